import type { ModelSignature, Outputs } from '../../engine/tensor.js';
import type { ImageGeometry } from '../image.js';

/** Turns a model's output tensors into the JSON a caller gets back. Built once per loaded version. */
export interface Postprocessor {
  readonly kind: string;
  /** @param geometry maps the model's input pixels back to the image as sent (identity for tensor input). */
  run(outputs: Outputs, geometry: ImageGeometry): unknown;
}

export interface PostprocessorContext {
  modelName: string;
  signature: ModelSignature;
  /** The folder of the model package, for files such as labels. */
  packageDir: string;
  /** The model's input size in pixels, when it takes images. */
  inputSize?: { width: number; height: number };
}
