/**
 * Tensor element types, as ONNX Runtime names them and as the Open Inference Protocol names them.
 * The engine's vocabulary: the local ONNX targets and the remote OIP accelerator both speak it.
 */

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

interface DtypeInfo {
  /** Open Inference Protocol datatype. */
  oip: string;
  bytes: number;
  array: { new (length: number): TypedArray; new (buffer: ArrayBuffer, byteOffset: number, length: number): TypedArray };
  /** 64-bit integers live in BigInt arrays; JSON carries them as numbers. */
  bigint: boolean;
}

const DTYPES: Record<string, DtypeInfo> = {
  float32: { oip: 'FP32', bytes: 4, array: Float32Array, bigint: false },
  float64: { oip: 'FP64', bytes: 8, array: Float64Array, bigint: false },
  int8: { oip: 'INT8', bytes: 1, array: Int8Array, bigint: false },
  uint8: { oip: 'UINT8', bytes: 1, array: Uint8Array, bigint: false },
  int16: { oip: 'INT16', bytes: 2, array: Int16Array, bigint: false },
  uint16: { oip: 'UINT16', bytes: 2, array: Uint16Array, bigint: false },
  int32: { oip: 'INT32', bytes: 4, array: Int32Array, bigint: false },
  uint32: { oip: 'UINT32', bytes: 4, array: Uint32Array, bigint: false },
  int64: { oip: 'INT64', bytes: 8, array: BigInt64Array, bigint: true },
  uint64: { oip: 'UINT64', bytes: 8, array: BigUint64Array, bigint: true },
  // ONNX Runtime hands booleans over as bytes.
  bool: { oip: 'BOOL', bytes: 1, array: Uint8Array, bigint: false },
};

const BY_OIP = new Map(Object.entries(DTYPES).map(([dtype, info]) => [info.oip, dtype]));

export function dtypeInfo(dtype: string): DtypeInfo | undefined {
  return DTYPES[dtype];
}

export function toOipDatatype(dtype: string): string {
  return DTYPES[dtype]?.oip ?? dtype.toUpperCase();
}

/** The ONNX Runtime dtype of an OIP datatype, or undefined when none matches. */
export function fromOipDatatype(datatype: string): string | undefined {
  return BY_OIP.get(datatype.toUpperCase());
}

/** A tensor's values as plain JSON numbers (booleans as true/false). */
export function toJsonValues(dtype: string, data: ArrayLike<unknown>): unknown[] {
  if (dtype === 'bool') return Array.from(data as Uint8Array, (v) => v !== 0);
  if (DTYPES[dtype]?.bigint) return Array.from(data as BigInt64Array, Number);
  return Array.from(data as ArrayLike<number>);
}

/** Copies raw little-endian bytes into a new typed array of the dtype; throws when the length does not divide. */
export function fromBytes(dtype: string, bytes: Uint8Array): TypedArray {
  const info = DTYPES[dtype];
  if (!info) throw new TypeError(`unsupported dtype ${dtype}`);
  if (bytes.byteLength % info.bytes !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  const length = bytes.byteLength / info.bytes;
  if (bytes.byteOffset % info.bytes === 0) {
    // Aligned: a view over the request's bytes costs nothing.
    return new info.array(bytes.buffer as ArrayBuffer, bytes.byteOffset, length);
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new info.array(copy.buffer, 0, length);
}

/** The raw bytes of a typed array, without copying. */
export function toBytes(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
