/**
 * The WebAssembly number reader (wasm/number-reader.ts, built by `npm run build` next to this file): reads a
 * rectangular nested array of JSON numbers from a body's bytes into doubles, in about two thirds of the time
 * the JS scanner takes (README, "Performance"). Compiled once, synchronously, with this module; its memory holds
 * one body at a time and is kept across bodies up to KEPT_MEMORY (below), so a request allocates no buffer for
 * it.
 *
 * The numbers it cannot prove it lists, and they are read here with Number(), as the JS scanner reads them; an
 * array that is not such a block at all it answers with -1, and the caller's own reader takes it.
 */
import { readFileSync } from 'node:fs';
import { Buffer } from 'node:buffer';
import type { BlockFacts } from './numeric-block.js';

/** What wasm/number-reader.ts exports. */
interface Exports {
  memory: WebAssembly.Memory;
  VALUES_FULL: WebAssembly.Global;
  MAX_RANK: WebAssembly.Global;
  PADDING: WebAssembly.Global;
  SHAPE: WebAssembly.Global;
  DEFERRED: WebAssembly.Global;
  valueCount: WebAssembly.Global;
  deferredCount: WebAssembly.Global;
  FLOAT32: WebAssembly.Global;
  INTEGERS: WebAssembly.Global;
  FINITE: WebAssembly.Global;
  input(): number;
  readBlock(pos: number, rank: number, values: number, room: number): number;
  narrow(values: number, count: number): number;
}

const WASM_PAGE = 65536;

/**
 * Memory the reader keeps between bodies. WebAssembly memory only grows, so after a body that needed more (a
 * large --max-body, or a body dense in one-digit numbers) the next smaller body gets a fresh instance, and the big
 * memory goes with the old one instead of staying with the process for good.
 */
const KEPT_MEMORY = 64 * 2 ** 20;

function compile(): WebAssembly.Module {
  const file = new URL('./number-reader.wasm', import.meta.url);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new Error(`${file.pathname} is missing: build with \`npm run build\` (asc, then tsc)`, { cause: error });
  }
  return new WebAssembly.Module(new Uint8Array(bytes));
}

const MODULE = compile();
const instantiate = () => new WebAssembly.Instance(MODULE).exports as unknown as Exports;

/** Bytes a JSON number may hold: digits, sign, dot, exponent mark. */
const IN_NUMBER = new Uint8Array(256);
for (const c of '0123456789+-.eE') IN_NUMBER[c.charCodeAt(0)] = 1;

class NumberReader {
  #wasm = instantiate();
  readonly #input = this.#wasm.input();
  readonly #padding = this.#wasm.PADDING.value as number;
  readonly #valuesFull = this.#wasm.VALUES_FULL.value as number;
  readonly #shapeAt = this.#wasm.SHAPE.value as number;
  readonly #deferredAt = this.#wasm.DEFERRED.value as number;
  readonly #maxRank = this.#wasm.MAX_RANK.value as number;
  readonly #float32Bit = this.#wasm.FLOAT32.value as number;
  readonly #integersBit = this.#wasm.INTEGERS.value as number;
  readonly #finiteBit = this.#wasm.FINITE.value as number;
  /** The loaded body's length. */
  #length = 0;
  /** Where a block's values go (a byte offset): past the body and its padding. */
  #values = 0;
  #bytes = Buffer.alloc(0);
  #doubles = new Float64Array(0);
  #floats = new Float32Array(0);
  #words = new Int32Array(0);

  /** Puts `text` into the reader's memory: the body that the following `block` calls read. */
  load(text: Buffer): void {
    this.#length = text.length;
    const end = this.#input + text.length;
    this.#values = (end + this.#padding + 7) & ~7;
    // Room for a number every 8 bytes, less than half of what tensor JSON spends; a denser block asks for more.
    const needed = this.#values + Math.max(8192, text.length);
    if (this.memoryBytes > KEPT_MEMORY && needed <= KEPT_MEMORY) {
      // Every instance of the module lays out its memory alike: the offsets read from the first still hold.
      this.#wasm = instantiate();
      this.#bytes = Buffer.alloc(0);
    }
    this.#reserve(needed);
    this.#bytes.set(text, this.#input);
    this.#bytes.fill(0, end, end + this.#padding);
  }

  /**
   * Reads the array of `rank` levels at `pos` (on its opening bracket) of the loaded body; answers the position
   * after it (then `count`, `shape` and `values` tell what it held), or -1 when it is no rectangular array of
   * JSON numbers or the reader stopped short of its end.
   */
  block(pos: number, rank: number): number {
    if (rank > this.#maxRank) return -1;
    const at = this.#input + pos;
    let end = this.#wasm.readBlock(at, rank, this.#values, this.#room());
    if (end === this.#valuesFull) {
      // At most one number every two bytes ("1,"): room for that, then it fits.
      this.#reserve(this.#values + 8 * ((this.#length >> 1) + 1));
      end = this.#wasm.readBlock(at, rank, this.#values, this.#room());
    }
    return end < 0 ? -1 : end - this.#input;
  }

  /** The size of the reader's memory now (what it holds on to between bodies). */
  get memoryBytes(): number {
    return this.#wasm.memory.buffer.byteLength;
  }

  /** How many numbers the last block held. */
  get count(): number {
    return this.#wasm.valueCount.value as number;
  }

  /** The last block's shape. */
  shape(rank: number): number[] {
    return Array.from(this.#words.subarray(this.#shapeAt >> 2, (this.#shapeAt >> 2) + rank));
  }

  /**
   * The last block's numbers, in a new array, and what every one of them is; those the reader did not prove read
   * with Number(). A Float32Array when every number is a float32 exactly (it then holds the same numbers in half
   * the bytes), else a Float64Array. Call it once per block: it rewrites the block in the reader's memory.
   */
  values(): { values: Float64Array | Float32Array; facts: BlockFacts } {
    const first = this.#values >> 3;
    const count = this.count;
    const deferred = this.#wasm.deferredCount.value as number;
    for (let i = 0; i < deferred; i++) {
      const slot = first + this.#words[(this.#deferredAt >> 2) + i]!;
      // The reader left the number's address in its slot; the number ends where its bytes do.
      const start = this.#doubles[slot]!;
      let end = start;
      while (IN_NUMBER[this.#bytes[end]!] === 1) end++;
      this.#doubles[slot] = Number(this.#bytes.toString('latin1', start, end));
    }
    const narrowed = this.#wasm.narrow(this.#values, count);
    const facts = { finite: (narrowed & this.#finiteBit) !== 0, integers: (narrowed & this.#integersBit) !== 0 };
    if ((narrowed & this.#float32Bit) === 0) return { values: this.#doubles.slice(first, first + count), facts };
    const firstFloat = this.#values >> 2;
    return { values: this.#floats.slice(firstFloat, firstFloat + count), facts };
  }

  #room(): number {
    return this.#doubles.length - (this.#values >> 3);
  }

  #reserve(bytes: number): void {
    const memory = this.#wasm.memory;
    if (memory.buffer.byteLength < bytes) memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / WASM_PAGE));
    if (this.#bytes.buffer !== memory.buffer) {
      this.#bytes = Buffer.from(memory.buffer);
      this.#doubles = new Float64Array(memory.buffer);
      this.#floats = new Float32Array(memory.buffer);
      this.#words = new Int32Array(memory.buffer);
    }
  }
}

/** The one reader of this thread: scanning is synchronous, so one body at a time uses it. */
export const numberReader = new NumberReader();
