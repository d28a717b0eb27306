/** What every number of a block is, as far as its reader proved it (false: not every one, or not known). */
export interface BlockFacts {
  finite: boolean;
  integers: boolean;
}

/**
 * A rectangular nested array of JSON numbers, held as its shape and one flat typed array (what the JSON
 * scanner makes of a tensor's `data`): a Float32Array when the reader found every number a float32 exactly,
 * else a Float64Array; either holds the very doubles JSON.parse reads. Inside a scanned object it sits behind
 * an accessor: code that only knows plain JSON (an entry script, a schema check) reads the nested arrays
 * `JSON.parse` would have made, built on first read, while the tensor path asks `fieldOf` and takes the typed
 * values with no detour.
 */
export class NumericBlock {
  constructor(
    readonly shape: readonly number[],
    readonly values: Float64Array | Float32Array,
    /** What the reader proved of every value; without it, nothing is known until checked. */
    readonly facts?: BlockFacts,
  ) {}

  /** The first value that is not finite, or (with `integers`) not an integer; undefined when none. */
  firstMisfit(integers: boolean): number | undefined {
    if (this.facts?.finite && (!integers || this.facts.integers)) return undefined;
    const values = this.values;
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      if (!Number.isFinite(value) || (integers && !Number.isInteger(value))) return value;
    }
    return undefined;
  }

  /** The nested arrays `JSON.parse` makes of the same text. */
  toNested(): unknown[] {
    let offset = 0;
    const build = (depth: number): unknown[] => {
      const length = this.shape[depth]!;
      const row: unknown[] = new Array(length);
      if (depth === this.shape.length - 1) for (let i = 0; i < length; i++) row[i] = this.values[offset++];
      else for (let i = 0; i < length; i++) row[i] = build(depth + 1);
      return row;
    };
    return build(0);
  }
}

/** The blocks still behind their accessors, by object and key. */
const blocks = new WeakMap<object, Map<string, NumericBlock>>();

/** Puts `block` at `target[key]` behind an accessor that builds the nested arrays on first read. */
export function defineBlock(target: Record<string, unknown>, key: string, block: NumericBlock): void {
  let byKey = blocks.get(target);
  if (!byKey) blocks.set(target, (byKey = new Map()));
  byKey.set(key, block);
  Object.defineProperty(target, key, {
    enumerable: true,
    configurable: true,
    get: () => {
      const nested = block.toNested();
      define(target, key, nested);
      return nested;
    },
    set: (value: unknown) => define(target, key, value),
  });
}

/** Sets `target[key]` to a plain value, in the key's place, whether a block was there or not. */
export function define(target: Record<string, unknown>, key: string, value: unknown): void {
  // An accessor cannot be overwritten by assignment (its setter would run): redefine the property.
  if (blocks.get(target)?.delete(key)) {
    Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  } else target[key] = value;
}

/** `target[key]`, as the block it was scanned into when it still is one (no nested arrays built). */
export function fieldOf(target: object, key: string): unknown {
  return blocks.get(target)?.get(key) ?? (target as Record<string, unknown>)[key];
}
