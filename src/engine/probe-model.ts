/**
 * The smallest ONNX model there is (y = Identity(x), one float), written out as protobuf bytes here so that a
 * probe needs no file: creating a session on a provider and running it once is the only honest test that the
 * provider works (ONNX Runtime lists `cuda` from its compile flags even where the provider library is missing).
 */

const varint = (value: number): number[] => {
  const bytes: number[] = [];
  while (value > 0x7f) {
    bytes.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  bytes.push(value);
  return bytes;
};
const number = (field: number, value: number): number[] => [...varint(field << 3), ...varint(value)];
const bytes = (field: number, content: number[]): number[] => [...varint((field << 3) | 2), ...varint(content.length), ...content];
const text = (field: number, value: string): number[] => bytes(field, [...Buffer.from(value, 'utf8')]);

/** TensorShapeProto.Dimension: a size, or the name of a free dimension. */
const dimension = (d: number | string): number[] => bytes(1, typeof d === 'number' ? number(1, d) : text(2, d));

/** ValueInfoProto: a float tensor of `shape`. */
const floatTensor = (name: string, shape: ReadonlyArray<number | string>): number[] =>
  [...text(1, name), ...bytes(2, bytes(1, [...number(1, 1), ...bytes(2, shape.flatMap(dimension))]))];

/** y = Identity(x), both float tensors of `shape` (a string names a free dimension). */
export function identityModel(shape: ReadonlyArray<number | string>): Uint8Array {
  const graph = [
    ...bytes(1, [...text(1, 'x'), ...text(2, 'y'), ...text(3, 'probe'), ...text(4, 'Identity')]),
    ...text(2, 'edge-infer-probe'),
    ...bytes(11, floatTensor('x', shape)),
    ...bytes(12, floatTensor('y', shape)),
  ];
  return Uint8Array.from([...number(1, 7), ...bytes(7, graph), ...bytes(8, number(2, 13))]);
}

export const PROBE_MODEL = identityModel([1]);
export const PROBE_FEEDS = { x: { type: 'float32', dims: [1], data: Float32Array.of(1) } };
