/**
 * JSON ↔ tensors: the `/score` bodies `{"data": ...}` and `{"inputs": {...}}`, and the tensor objects
 * `{"dtype", "shape", "data"}` that come back. Every tensor is checked against the model's signature, so a
 * request that does not fit gets a 422 naming the input, not an ONNX Runtime message.
 */
import { EdgeInferError } from '../errors.js';
import { dtypeInfo, toJsonValues } from '../engine/dtypes.js';
import { elementCount, type Feeds, type ModelSignature, type Outputs, type Tensor, type TensorSpec } from '../engine/tensor.js';
import { assembleFeeds, checkDtypeAndShape } from './feeds.js';
import { fieldOf, NumericBlock } from './numeric-block.js';

/**
 * A tensor as JSON carries it; `data` may be flat (with `shape`) or nested (shape inferred), as plain JS
 * values (JSON.parse) or as the block the body scanner read it into (json-scan.ts).
 */
export interface JsonTensor {
  dtype?: string;
  shape?: number[];
  data: unknown;
}

export interface JsonTensorOut {
  dtype: string;
  shape: number[];
  data: unknown[];
}

/**
 * `{"data": ...}` (single-input models) or `{"inputs": {"name": nested | {dtype, shape, data}}}`. Fields are
 * read with fieldOf, so that arrays the scanner kept as blocks are never built as nested arrays.
 */
export function feedsFromScoreBody(modelName: string, signature: ModelSignature, body: unknown): Feeds {
  const request = body as { data?: unknown; inputs?: Record<string, unknown> } | null;
  if (request && typeof request === 'object' && 'data' in request) {
    if (signature.inputs.length !== 1) {
      const names = signature.inputs.map((i) => i.name).join(', ');
      throw new EdgeInferError('EI_BAD_REQUEST', [
        `Model "${modelName}" has ${signature.inputs.length} inputs (${names}); send {"inputs": {"<name>": ...}}`,
      ]);
    }
    const spec = signature.inputs[0]!;
    return { [spec.name]: tensorFromJson(spec, { data: fieldOf(request, 'data') }) };
  }
  if (request && typeof request === 'object' && request.inputs && typeof request.inputs === 'object' && !Array.isArray(request.inputs)) {
    const given = request.inputs;
    const inputs = Object.keys(given).map((name) => {
      const value = fieldOf(given, name);
      return {
        name,
        toTensor: (spec: TensorSpec) => tensorFromJson(spec, isTensorObject(value) ? { dtype: value.dtype, shape: value.shape, data: fieldOf(value, 'data') } : { data: value }),
      };
    });
    return assembleFeeds(modelName, signature, inputs);
  }
  throw new EdgeInferError('EI_BAD_REQUEST', ['Send {"data": <nested array>} or {"inputs": {"<input name>": <nested array> | {"dtype", "shape", "data"}}}']);
}

function isTensorObject(value: unknown): value is JsonTensor {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof NumericBlock) && 'data' in value;
}

export function tensorFromJson(spec: TensorSpec, given: JsonTensor): Tensor {
  const type = spec.type;
  const info = dtypeInfo(type);
  if (!info) throw new EdgeInferError('EI_INPUT_DTYPE', [spec.name, 'a type this service can send', type]);
  const block = given.data instanceof NumericBlock ? given.data : undefined;
  const nestedShape = block ? [...block.shape] : inferShape(spec.name, given.data);
  const dims = given.shape ?? nestedShape;
  if (!Array.isArray(dims) || dims.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new EdgeInferError('EI_BAD_REQUEST', [`Input "${spec.name}": shape must be a list of non-negative integers`]);
  }
  checkDtypeAndShape(spec, given.dtype, dims);
  const count = elementCount(dims);
  if (elementCount(nestedShape) !== count) {
    throw new EdgeInferError('EI_INPUT_SHAPE', [
      spec.name,
      JSON.stringify(dims),
      `${elementCount(nestedShape)} values (data does not fill the shape)`,
    ]);
  }
  const integer = type !== 'float32' && type !== 'float64';
  const refuse = (value: unknown): never => {
    throw new EdgeInferError('EI_INPUT_DTYPE', [spec.name, type, `a value ${JSON.stringify(value)}`]);
  };
  if (block) {
    // The same checks as below, on values that can only be numbers (the reader's facts skip what they prove).
    const misfit = block.firstMisfit(integer);
    if (misfit !== undefined) refuse(misfit);
    // A Float32Array block is the reader's own copy, made for this: a float32 tensor takes it as it is.
    if (type === 'float32' && block.values instanceof Float32Array) return { type, dims, data: block.values };
    const data = new info.array(count);
    // One native conversion (set() stores each value as an assignment would), as a store into a typed array
    // of any dtype here would be megamorphic.
    if (info.bigint) for (let i = 0; i < count; i++) data[i] = BigInt(block.values[i]!) as never;
    else (data as Float64Array).set(block.values);
    return { type, dims, data };
  }
  const data = new info.array(count);
  let index = 0;
  const write = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) write(item);
      return;
    }
    const number = typeof value === 'boolean' && type === 'bool' ? Number(value) : value;
    if (typeof number !== 'number' || !Number.isFinite(number) || (integer && !Number.isInteger(number))) refuse(value);
    data[index++] = (info.bigint ? BigInt(number as number) : number) as never;
  };
  write(given.data);
  return { type, dims, data };
}

/** The shape of a rectangular nested array; a ragged one is a 400 that says where. */
function inferShape(name: string, data: unknown): number[] {
  const shape: number[] = [];
  for (let level: unknown = data; Array.isArray(level); level = level[0]) shape.push(level.length);
  const check = (value: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (Array.isArray(value)) ragged();
      return;
    }
    if (!Array.isArray(value) || value.length !== shape[depth]) ragged();
    for (const item of value as unknown[]) check(item, depth + 1);
  };
  const ragged = (): never => {
    throw new EdgeInferError('EI_BAD_REQUEST', [`Input "${name}": data is a ragged array; every row must have the same length`]);
  };
  check(data, 0);
  return shape;
}

export function tensorToJson(tensor: Tensor): JsonTensorOut {
  return { dtype: tensor.type, shape: [...tensor.dims], data: toJsonValues(tensor.type, tensor.data) };
}

export function outputsToJson(outputs: Outputs): Record<string, JsonTensorOut> {
  const result: Record<string, JsonTensorOut> = {};
  for (const [name, tensor] of Object.entries(outputs)) result[name] = tensorToJson(tensor);
  return result;
}
