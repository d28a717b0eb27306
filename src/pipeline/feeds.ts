/**
 * Checks shared by every way tensors arrive (JSON bodies, OIP JSON, OIP binary): names against the model's
 * inputs, then each tensor's dtype and shape, so that a request that does not fit gets a 422 that names
 * the input and what it must be.
 */
import { EdgeInferError } from '../errors.js';
import { fixedShape, shapeMatches, type Feeds, type ModelSignature, type Tensor, type TensorSpec } from '../engine/tensor.js';

export interface NamedInput {
  name: string;
  /** Builds the tensor once its input is known; may throw a coded error about the data. */
  toTensor(spec: TensorSpec): Tensor;
}

export function assembleFeeds(modelName: string, signature: ModelSignature, inputs: readonly NamedInput[]): Feeds {
  const feeds: Feeds = {};
  for (const input of inputs) {
    const spec = signature.inputs.find((i) => i.name === input.name);
    if (!spec) throw new EdgeInferError('EI_INPUT_NAME', [modelName, input.name, signature.inputs.map((i) => i.name).join(', ')]);
    feeds[input.name] = input.toTensor(spec);
  }
  const missing = signature.inputs.find((i) => !(i.name in feeds));
  if (missing) throw new EdgeInferError('EI_INPUT_MISSING', [modelName, missing.name]);
  return feeds;
}

/** The dtype and shape a request states must be the model's. */
export function checkDtypeAndShape(spec: TensorSpec, dtype: string | undefined, dims: readonly number[]): void {
  if (dtype !== undefined && dtype !== spec.type) throw new EdgeInferError('EI_INPUT_DTYPE', [spec.name, spec.type, dtype]);
  if (!shapeMatches(spec, dims)) throw new EdgeInferError('EI_INPUT_SHAPE', [spec.name, JSON.stringify(fixedShape(spec)), JSON.stringify(dims)]);
}
