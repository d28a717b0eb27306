import { dtypeInfo, type TypedArray } from './dtypes.js';

/**
 * A tensor as the engine takes and gives it: structurally what ONNX Runtime's Tensor is, so that
 * handing one over costs no copy, but owned by us so that pipelines and transports never import onnxruntime.
 */
export interface Tensor {
  /** ONNX Runtime's element type name: float32, int64, uint8, bool, ... */
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: TypedArray;
}

/** An input or output as the model declares it; a string dimension is symbolic (any size). */
export interface TensorSpec {
  name: string;
  type: string;
  shape: Array<number | string>;
}

export interface ModelSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export type Feeds = Record<string, Tensor>;
export type Outputs = Record<string, Tensor>;

export function elementCount(dims: readonly number[]): number {
  let count = 1;
  for (const d of dims) count *= d;
  return count;
}

/** Whether a model's dimension takes any size: a symbolic name, or a negative number. */
export function isFreeDimension(d: TensorSpec['shape'][number]): boolean {
  return typeof d !== 'number' || d < 0;
}

/** The shape a request must match, with symbolic dimensions shown as -1 (as the Open Inference Protocol does). */
export function fixedShape(spec: TensorSpec): number[] {
  return spec.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
}

export function shapeMatches(spec: TensorSpec, dims: readonly number[]): boolean {
  if (spec.shape.length !== dims.length) return false;
  return spec.shape.every((d, i) => isFreeDimension(d) || d === dims[i]);
}

/**
 * Zeros of each input's shape, every free dimension 1: the unit-size request (warm-up, tensor limits).
 * @param rows the first dimension instead (a batch's warm-up).
 */
export function zeroFeeds(signature: ModelSignature, rows?: number): Feeds {
  const feeds: Feeds = {};
  for (const input of signature.inputs) {
    const dims = unitShape(input);
    if (rows !== undefined) dims[0] = rows;
    const info = dtypeInfo(input.type);
    if (!info) throw new Error(`input "${input.name}" has type ${input.type}, which warm-up cannot fill`);
    feeds[input.name] = { type: input.type, dims, data: new info.array(elementCount(dims)) };
  }
  return feeds;
}

/** An input's shape with every free dimension 1. */
export function unitShape(spec: TensorSpec): number[] {
  return spec.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
}
