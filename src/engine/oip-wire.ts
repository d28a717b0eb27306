/**
 * The client's side of an OIP inference: feeds to a request body, the answer back to tensors. With the binary
 * tensor data extension the tensors travel as raw little-endian bytes after a JSON header (no number is
 * printed or parsed); without it, as JSON arrays, which every v2 server takes.
 */
import { EdgeInferError } from '../errors.js';
import { dtypeInfo, fromBytes, fromOipDatatype, toBytes, toJsonValues, toOipDatatype } from './dtypes.js';
import type { Feeds, Outputs } from './tensor.js';

export const HEADER_LENGTH = 'inference-header-content-length';

export interface WireRequest {
  /** Written one after the other: the tensors' own bytes are sent as they are, never copied into one buffer. */
  body: Uint8Array[];
  headers: Record<string, string | number>;
}

export function encodeRemoteRequest(feeds: Feeds, outputNames: readonly string[], binary: boolean): WireRequest {
  const chunks: Uint8Array[] = [];
  const inputs = Object.entries(feeds).map(([name, tensor]) => {
    const head = { name, shape: [...tensor.dims], datatype: toOipDatatype(tensor.type) };
    if (!binary) return { ...head, data: toJsonValues(tensor.type, tensor.data) };
    const bytes = toBytes(tensor.data);
    chunks.push(bytes);
    return { ...head, parameters: { binary_data_size: bytes.byteLength } };
  });
  const outputs = outputNames.map((name) => (binary ? { name, parameters: { binary_data: true } } : { name }));
  const header = Buffer.from(JSON.stringify({ inputs, outputs }));
  if (!binary) return { body: [header], headers: { 'content-type': 'application/json' } };
  return { body: [header, ...chunks], headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: header.length } };
}

interface WireOutput {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown[];
  parameters?: { binary_data_size?: number };
}

/** @param headerLength the answer's Inference-Header-Content-Length, when binary data follows its JSON */
export function decodeRemoteResponse(body: Buffer, headerLength: number | undefined, where: string): Outputs {
  const jsonEnd = headerLength ?? body.length;
  let parsed: { outputs?: WireOutput[] };
  try {
    parsed = JSON.parse(body.toString('utf8', 0, jsonEnd)) as { outputs?: WireOutput[] };
  } catch (error) {
    throw new EdgeInferError('EI_ACCELERATOR_UNAVAILABLE', [where, 'the inference answer is not JSON'], error);
  }
  const outputs: Outputs = {};
  let offset = jsonEnd;
  for (const output of parsed.outputs ?? []) {
    const dtype = fromOipDatatype(output.datatype);
    const info = dtype && dtypeInfo(dtype);
    if (!dtype || !info) throw new EdgeInferError('EI_ACCELERATOR_UNAVAILABLE', [where, `output "${output.name}" has datatype ${output.datatype}, which the module cannot read`]);
    const size = output.parameters?.binary_data_size;
    if (size !== undefined) {
      outputs[output.name] = { type: dtype, dims: output.shape, data: fromBytes(dtype, body.subarray(offset, offset + size)) };
      offset += size;
      continue;
    }
    const values = output.data ?? [];
    const data = new info.array(values.length);
    for (let i = 0; i < values.length; i++) (data as unknown as unknown[])[i] = info.bigint ? BigInt(values[i] as number) : Number(values[i]);
    outputs[output.name] = { type: dtype, dims: output.shape, data };
  }
  return outputs;
}
