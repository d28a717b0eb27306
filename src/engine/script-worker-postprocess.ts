/**
 * The manifest's postprocessor run on a model's outputs, its failures coded. A loaded version runs it after each
 * inference; an entry script's worker builds its own and runs it here too, so that `ctx.postprocess(outputs)`
 * answers at once, as it did in the main thread, without loading the image pipeline into the worker.
 */
import { EdgeInferError, messageOf } from '../errors.js';
import type { ImageGeometry } from '../pipeline/image.js';
import type { Postprocessor } from '../pipeline/postprocess/index.js';
import type { Outputs } from './tensor.js';

export function runPostprocessor(postprocessor: Postprocessor, modelName: string, outputs: Outputs, geometry: ImageGeometry): unknown {
  try {
    return postprocessor.run(outputs, geometry);
  } catch (error) {
    throw new EdgeInferError('EI_POSTPROCESS_FAILED', [postprocessor.kind, modelName, messageOf(error)], error);
  }
}
