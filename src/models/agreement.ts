/**
 * How far a candidate version's output agrees with the active version's on the same input (shadow versions,
 * README "Model lifecycle"). The kind of comparison follows the shape of the active's output:
 * - `top1`: classification (`{predictions}` or `{batch: [{predictions}]}`), the best class of every row;
 * - `detection`: `{detections: [{box, label?}]}`, boxes matched one to one at IoU ≥ 0.5;
 * - `tensors`: raw tensors, as JSON (`{outputs: {name: {dtype, shape, data}}}`) or as the engine gives them
 *   (`{name: {type, dims, data: TypedArray}}`), the largest absolute difference against a tolerance;
 * - `exact`: anything else (an entry script's result), walked structurally, numbers within the tolerance.
 * Runs on the shadow path for every compared input: plain loops, no serialisation of tensors.
 */

export type ComparisonKind = 'top1' | 'detection' | 'tensors' | 'exact';

export interface Comparison {
  kind: ComparisonKind;
  agree: boolean;
  /** detection: boxes of each side, and how many were matched one-to-one at IoU >= 0.5 */
  boxes?: { active: number; candidate: number; matched: number };
  /** tensors: the largest absolute difference over every element (Infinity when shapes/dtypes/names differ) */
  maxAbsDiff?: number;
}

/** The IoU at which a candidate box counts as the same object as an active one (as COCO's AP50 does). */
const MATCH_IOU = 0.5;

/** Deeper than any result a person writes; a deeper (or cyclic) value is reported as not equal instead of overflowing the stack. */
const MAX_DEPTH = 256;

interface Detection {
  box: [number, number, number, number];
  label?: unknown;
}

/** A tensor of either form, its values readable as numbers. */
interface FlatTensor {
  dtype: string | undefined;
  shape: readonly number[];
  values: ArrayLike<number>;
}

type Parsed =
  | { kind: 'top1'; rows: number[][] }
  | { kind: 'detection'; detections: Detection[] }
  | { kind: 'tensors'; tensors: Map<string, FlatTensor> }
  | { kind: 'exact'; value: unknown };

export function compareOutputs(active: unknown, candidate: unknown, tolerance: number): Comparison {
  const a = parse(active);
  const c = parse(candidate);
  if (a.kind === 'top1' && c.kind === 'top1') return { kind: 'top1', agree: sameTop1(a.rows, c.rows) };
  if (a.kind === 'detection' && c.kind === 'detection') return compareDetections(a.detections, c.detections);
  if (a.kind === 'tensors' && c.kind === 'tensors') {
    const maxAbsDiff = tensorsMaxAbsDiff(a.tensors, c.tensors);
    return { kind: 'tensors', agree: maxAbsDiff <= tolerance, maxAbsDiff };
  }
  if (a.kind === 'exact' && c.kind === 'exact') return { kind: 'exact', agree: equalWithin(a.value, c.value, tolerance, 0) };
  // The candidate answers in another form than the active: nothing of it can be matched.
  return a.kind === 'tensors' ? { kind: 'tensors', agree: false, maxAbsDiff: Infinity } : { kind: a.kind, agree: false };
}

function parse(output: unknown): Parsed {
  if (!isRecord(output)) return { kind: 'exact', value: output };
  const rows = classificationRows(output);
  if (rows) return { kind: 'top1', rows };
  const { detections } = output;
  if (Array.isArray(detections) && detections.every(isDetection)) return { kind: 'detection', detections };
  const tensors = jsonTensors(output) ?? engineTensors(output);
  if (tensors) return { kind: 'tensors', tensors };
  return { kind: 'exact', value: output };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

// ---- top1 ----------------------------------------------------------------------------------------------------

/** The class indices of each row, best first; undefined when the output is not a classification. */
function classificationRows(output: Record<string, unknown>): number[][] | undefined {
  const predictionIndices = (predictions: unknown): number[] | undefined => {
    if (!Array.isArray(predictions)) return undefined;
    const indices: number[] = [];
    for (const p of predictions) {
      if (!isRecord(p) || typeof p.index !== 'number') return undefined;
      indices.push(p.index);
    }
    return indices;
  };
  if ('predictions' in output) {
    const row = predictionIndices(output.predictions);
    return row && [row];
  }
  if (!Array.isArray(output.batch)) return undefined;
  const rows: number[][] = [];
  for (const item of output.batch) {
    const row = isRecord(item) ? predictionIndices(item.predictions) : undefined;
    if (!row) return undefined;
    rows.push(row);
  }
  return rows;
}

/** Every row's best class is the same (a row with no class agrees only with another such row). */
function sameTop1(active: number[][], candidate: number[][]): boolean {
  if (active.length !== candidate.length) return false;
  return active.every((row, i) => row[0] === candidate[i]![0]);
}

// ---- detection -----------------------------------------------------------------------------------------------

function isDetection(value: unknown): value is Detection {
  if (!isRecord(value) || !Array.isArray(value.box) || value.box.length !== 4) return false;
  return value.box.every((v) => typeof v === 'number');
}

/**
 * Greedy one-to-one matching: of all the pairs that overlap at IoU ≥ 0.5 (with the same label where both sides
 * name one), the most overlapping pair is matched first, then the next whose boxes are both still free.
 */
function compareDetections(active: Detection[], candidate: Detection[]): Comparison {
  const pairs: Array<{ iou: number; a: number; c: number }> = [];
  for (let a = 0; a < active.length; a++) {
    for (let c = 0; c < candidate.length; c++) {
      const left = active[a]!;
      const right = candidate[c]!;
      if (left.label !== undefined && right.label !== undefined && left.label !== right.label) continue;
      const overlap = boxIou(left.box, right.box);
      if (overlap >= MATCH_IOU) pairs.push({ iou: overlap, a, c });
    }
  }
  pairs.sort((x, y) => y.iou - x.iou);
  const activeTaken = new Uint8Array(active.length);
  const candidateTaken = new Uint8Array(candidate.length);
  let matched = 0;
  for (const { a, c } of pairs) {
    if (activeTaken[a] || candidateTaken[c]) continue;
    activeTaken[a] = 1;
    candidateTaken[c] = 1;
    matched++;
  }
  return {
    kind: 'detection',
    agree: matched === active.length && matched === candidate.length,
    boxes: { active: active.length, candidate: candidate.length, matched },
  };
}

/** Intersection over union of two [x1, y1, x2, y2] boxes; two identical boxes of no area (clamped to an edge) are the same box. */
function boxIou(a: readonly number[], b: readonly number[]): number {
  const width = Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!);
  const height = Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!);
  const inner = width > 0 && height > 0 ? width * height : 0;
  const union = (a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inner;
  if (union > 0) return inner / union;
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3] ? 1 : 0;
}

// ---- tensors -------------------------------------------------------------------------------------------------

/** `{outputs: {name: {dtype, shape, data}}}`, as the raw postprocessor answers. */
function jsonTensors(output: Record<string, unknown>): Map<string, FlatTensor> | undefined {
  const { outputs } = output;
  if (!isRecord(outputs)) return undefined;
  const tensors = new Map<string, FlatTensor>();
  for (const [name, tensor] of Object.entries(outputs)) {
    if (!isRecord(tensor) || !(Array.isArray(tensor.data) || ArrayBuffer.isView(tensor.data))) return undefined;
    const values = flatValues(tensor.data);
    if (!values) return undefined;
    const shape = isShape(tensor.shape) ? tensor.shape : nestedShape(tensor.data);
    tensors.set(name, { dtype: typeof tensor.dtype === 'string' ? tensor.dtype : undefined, shape, values });
  }
  return tensors;
}

/** `{name: {type, dims, data: TypedArray}}`, as the engine's infer (the Open Inference Protocol path) gives it. */
function engineTensors(output: Record<string, unknown>): Map<string, FlatTensor> | undefined {
  const entries = Object.entries(output);
  if (entries.length === 0) return undefined;
  const tensors = new Map<string, FlatTensor>();
  for (const [name, tensor] of entries) {
    if (!isRecord(tensor) || typeof tensor.type !== 'string' || !isShape(tensor.dims) || !ArrayBuffer.isView(tensor.data)) return undefined;
    const values = flatValues(tensor.data);
    if (!values) return undefined;
    tensors.set(name, { dtype: tensor.type, shape: tensor.dims, values });
  }
  return tensors;
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((d) => typeof d === 'number');
}

function nestedShape(data: unknown): number[] {
  const shape: number[] = [];
  for (let level: unknown = data; Array.isArray(level); level = level[0]) shape.push(level.length);
  return shape;
}

/**
 * The values as numbers without a copy where they already are (number typed arrays, flat number arrays);
 * 64-bit integers, booleans and nested arrays are converted once. Undefined when a value is not numeric.
 */
function flatValues(data: unknown): ArrayLike<number> | undefined {
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Float64Array.from(data, Number);
  if (ArrayBuffer.isView(data)) return data instanceof DataView ? undefined : (data as unknown as ArrayLike<number>);
  const values = data as unknown[];
  let flat = true;
  for (let i = 0; i < values.length && flat; i++) flat = typeof values[i] === 'number';
  if (flat) return values as number[];
  const out: number[] = [];
  const walk = (value: unknown, depth: number): boolean => {
    if (Array.isArray(value)) return depth < MAX_DEPTH && value.every((item) => walk(item, depth + 1));
    if (typeof value === 'number') out.push(value);
    else if (typeof value === 'boolean') out.push(Number(value));
    else if (typeof value === 'bigint') out.push(Number(value));
    else return false;
    return true;
  };
  return walk(values, 0) ? out : undefined;
}

/** The largest absolute difference over every element of every output; Infinity when names, dtypes or shapes differ. */
function tensorsMaxAbsDiff(active: Map<string, FlatTensor>, candidate: Map<string, FlatTensor>): number {
  if (active.size !== candidate.size) return Infinity;
  let max = 0;
  for (const [name, a] of active) {
    const c = candidate.get(name);
    if (!c || (a.dtype !== undefined && c.dtype !== undefined && a.dtype !== c.dtype) || !sameShape(a.shape, c.shape)) return Infinity;
    if (a.values.length !== c.values.length) return Infinity;
    max = Math.max(max, maxAbsDiff(a.values, c.values));
  }
  return max;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** NaN against NaN and an infinity against the same infinity count as equal; NaN against a number differs infinitely. */
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const d = Math.abs(x - y);
    if (d > max) max = d;
    else if (d !== d && x !== y && !(x !== x && y !== y)) return Infinity;
  }
  return max;
}

// ---- exact ---------------------------------------------------------------------------------------------------

/** Structural equality: numbers (and 64-bit integers) within the tolerance, everything else equal. */
function equalWithin(a: unknown, b: unknown, tolerance: number, depth: number): boolean {
  if (depth > MAX_DEPTH) return false;
  if ((typeof a === 'number' || typeof a === 'bigint') && (typeof b === 'number' || typeof b === 'bigint')) {
    const x = Number(a);
    const y = Number(b);
    return x === y || Math.abs(x - y) <= tolerance || (x !== x && y !== y);
  }
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const aList = Array.isArray(a) || ArrayBuffer.isView(a);
  const bList = Array.isArray(b) || ArrayBuffer.isView(b);
  if (aList !== bList) return false;
  if (aList) {
    // An array and a typed array of the same numbers are equal: a worker may hand either over.
    const x = a as ArrayLike<unknown>;
    const y = b as ArrayLike<unknown>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!equalWithin(x[i], y[i], tolerance, depth + 1)) return false;
    return true;
  }
  // A field that is undefined is one JSON leaves out: the same as no field.
  const keysOf = (o: object) => Object.keys(o).filter((k) => (o as Record<string, unknown>)[k] !== undefined);
  const keys = keysOf(a);
  if (keys.length !== keysOf(b).length) return false;
  const y = b as Record<string, unknown>;
  return keys.every((k) => Object.hasOwn(y, k) && equalWithin((a as Record<string, unknown>)[k], y[k], tolerance, depth + 1));
}
