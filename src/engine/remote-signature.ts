/**
 * The package's model against the accelerator's: same input and output names, datatypes and shapes (a free
 * dimension, -1 on the wire or a symbol in ONNX, matches any size). A server holding another model must be
 * refused before a request reaches it, with both signatures in the message.
 */
import { toOipDatatype } from './dtypes.js';
import { fixedShape, type ModelSignature } from './tensor.js';

interface WireSpec {
  name: string;
  datatype: string;
  shape: number[];
}

export interface RemoteMetadata {
  name?: string;
  inputs?: WireSpec[];
  outputs?: WireSpec[];
}

function wireSpecs(signature: ModelSignature | RemoteMetadata, side: 'inputs' | 'outputs'): WireSpec[] {
  const specs = signature[side] ?? [];
  return specs.map((s) => ('datatype' in s ? s : { name: s.name, datatype: toOipDatatype(s.type), shape: fixedShape(s) }));
}

/** Why the two differ, or undefined when they match. */
export function signatureMismatch(local: ModelSignature, remote: RemoteMetadata): string | undefined {
  for (const side of ['inputs', 'outputs'] as const) {
    const theirs = new Map(wireSpecs(remote, side).map((s) => [s.name, s]));
    for (const ours of wireSpecs(local, side)) {
      const match = theirs.get(ours.name);
      if (!match) return `the server's model has no ${side.slice(0, -1)} "${ours.name}"`;
      if (match.datatype.toUpperCase() !== ours.datatype) return `${side.slice(0, -1)} "${ours.name}" is ${match.datatype} there, ${ours.datatype} here`;
      const same = match.shape.length === ours.shape.length && match.shape.every((d, i) => d < 0 || ours.shape[i]! < 0 || d === ours.shape[i]);
      if (!same) return `${side.slice(0, -1)} "${ours.name}" has shape [${match.shape.join(',')}] there, [${ours.shape.join(',')}] here`;
    }
  }
  return undefined;
}

/** `inputs x FP32[1,3]; outputs y FP32[1,3]` */
export function describeSignature(signature: ModelSignature | RemoteMetadata): string {
  const list = (side: 'inputs' | 'outputs') => wireSpecs(signature, side).map((s) => `${s.name} ${s.datatype}[${s.shape.join(',')}]`).join(', ') || '(none)';
  return `inputs ${list('inputs')}; outputs ${list('outputs')}`;
}
