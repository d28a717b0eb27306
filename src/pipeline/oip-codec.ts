/**
 * The Open Inference Protocol (KServe v2) infer request and response, in JSON and with the binary tensor
 * data extension: a JSON header of `Inference-Header-Content-Length` bytes, then each binary tensor's raw
 * little-endian bytes in the order of the header, sized by `parameters.binary_data_size`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { EdgeInferError, messageOf } from '../errors.js';
import { dtypeInfo, fromBytes, fromOipDatatype, toBytes, toJsonValues, toOipDatatype } from '../engine/dtypes.js';
import { elementCount, type Feeds, type ModelSignature, type Outputs, type TensorSpec } from '../engine/tensor.js';
import { assembleFeeds, checkDtypeAndShape } from './feeds.js';
import { tensorFromJson } from './json-tensors.js';
import { fieldOf } from './numeric-block.js';

const Parameters = Type.Optional(Type.Record(Type.String(), Type.Unknown()));

const inputFields = {
  name: Type.String(),
  shape: Type.Array(Type.Integer({ minimum: 0 })),
  datatype: Type.String(),
  parameters: Parameters,
};

const requestFields = {
  id: Type.Optional(Type.String()),
  parameters: Parameters,
  outputs: Type.Optional(Type.Array(Type.Object({ name: Type.String(), parameters: Parameters }))),
};

export const InferRequestSchema = Type.Object({
  ...requestFields,
  inputs: Type.Array(Type.Object({ ...inputFields, data: Type.Optional(Type.Unknown()) }), { minItems: 1 }),
});

export type InferRequest = Static<typeof InferRequestSchema>;

// Checked without `data`: the schema allows anything there, and reading it would build the nested arrays
// that the JSON scanner kept as one typed block.
const checkRequest = TypeCompiler.Compile(Type.Object({ ...requestFields, inputs: Type.Array(Type.Object(inputFields), { minItems: 1 }) }));

export const HEADER_LENGTH = 'inference-header-content-length';

export interface DecodedInferRequest {
  id?: string;
  feeds: Feeds;
  /** The outputs asked for, in order; all of the model's when the request names none. */
  outputs: string[];
  /** The outputs to send as binary data rather than JSON. */
  binaryOutputs: Set<string>;
}

/**
 * @param body the whole request body
 * @param headerLength the `Inference-Header-Content-Length` header, when binary data follows the JSON
 * @param scanned the JSON part as the body scanner read it (json-scan.ts); without it, JSON.parse reads it
 */
export function decodeInferRequest(
  modelName: string,
  signature: ModelSignature,
  body: Buffer,
  headerLength: number | undefined,
  scanned?: unknown,
): DecodedInferRequest {
  const jsonEnd = headerLength ?? body.length;
  if (!Number.isInteger(jsonEnd) || jsonEnd < 0 || jsonEnd > body.length) {
    throw new EdgeInferError('EI_BAD_BINARY_TENSOR', [`Inference-Header-Content-Length ${headerLength} exceeds the body's ${body.length} bytes`]);
  }
  let request: InferRequest;
  try {
    request = (scanned ?? JSON.parse(body.toString('utf8', 0, jsonEnd))) as InferRequest;
  } catch (error) {
    throw new EdgeInferError('EI_BAD_JSON', [messageOf(error)], error);
  }
  if (!checkRequest.Check(request)) {
    const first = checkRequest.Errors(request).First();
    throw new EdgeInferError('EI_BAD_REQUEST', [`The infer request does not match the protocol at ${first?.path || '/'}: ${first?.message}`]);
  }

  let offset = jsonEnd;
  const inputs = request.inputs.map((input) => {
    const dtype = fromOipDatatype(input.datatype);
    if (!dtype) throw new EdgeInferError('EI_INPUT_DTYPE', [input.name, 'an OIP datatype such as FP32 or INT64', input.datatype]);
    const size = input.parameters?.binary_data_size;
    if (size === undefined) return { name: input.name, toTensor: (spec: TensorSpec) => tensorFromJson(spec, { dtype, shape: input.shape, data: fieldOf(input, 'data') }) };
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 0 || offset + size > body.length) {
      throw new EdgeInferError('EI_BAD_BINARY_TENSOR', [`input "${input.name}" declares ${String(size)} bytes; ${body.length - offset} remain`]);
    }
    const bytes = body.subarray(offset, offset + size);
    offset += size;
    return {
      name: input.name,
      toTensor: (spec: TensorSpec) => {
        checkDtypeAndShape(spec, dtype, input.shape);
        // Checked in bytes before any view is made: a size that is no whole number of elements is the client's error.
        const expected = elementCount(input.shape) * dtypeInfo(dtype)!.bytes;
        if (bytes.byteLength !== expected) {
          throw new EdgeInferError('EI_BAD_BINARY_TENSOR', [`input "${input.name}" has ${bytes.byteLength} bytes; ${input.datatype} of shape ${JSON.stringify(input.shape)} is ${expected}`]);
        }
        return { type: dtype, dims: input.shape, data: fromBytes(dtype, bytes) };
      },
    };
  });
  if (offset !== body.length) throw new EdgeInferError('EI_BAD_BINARY_TENSOR', [`${body.length - offset} bytes follow the last tensor`]);
  const feeds = assembleFeeds(modelName, signature, inputs);

  const modelOutputs = signature.outputs.map((o) => o.name);
  const asked = request.outputs ?? modelOutputs.map((name) => ({ name, parameters: undefined }));
  for (const { name } of asked) {
    if (!modelOutputs.includes(name)) throw new EdgeInferError('EI_OUTPUT_NAME', [modelName, name, modelOutputs.join(', ')]);
  }
  const allBinary = request.parameters?.binary_data_output === true;
  const binaryOutputs = new Set(asked.filter((o) => allBinary || o.parameters?.binary_data === true).map((o) => o.name));
  return { id: request.id, feeds, outputs: asked.map((o) => o.name), binaryOutputs };
}

export interface EncodedInferResponse {
  body: Buffer | Record<string, unknown>;
  /** Set when binary data follows the JSON header. */
  headerLength?: number;
}

export function encodeInferResponse(
  model: { name: string; version: string },
  request: Pick<DecodedInferRequest, 'id' | 'outputs' | 'binaryOutputs'>,
  results: Outputs,
): EncodedInferResponse {
  const chunks: Uint8Array[] = [];
  const outputs = request.outputs.map((name) => {
    const tensor = results[name]!;
    const head = { name, datatype: toOipDatatype(tensor.type), shape: [...tensor.dims] };
    if (!request.binaryOutputs.has(name)) return { ...head, data: toJsonValues(tensor.type, tensor.data) };
    const bytes = toBytes(tensor.data);
    chunks.push(bytes);
    return { ...head, parameters: { binary_data_size: bytes.byteLength } };
  });
  const json = { model_name: model.name, model_version: model.version, ...(request.id !== undefined ? { id: request.id } : {}), outputs };
  if (chunks.length === 0) return { body: json };
  const header = Buffer.from(JSON.stringify(json));
  return { body: Buffer.concat([header, ...chunks]), headerLength: header.length };
}
