import { outputsToJson } from '../json-tensors.js';
import type { Postprocessor } from './types.js';

/** Every output tensor, as `{"outputs": {"<name>": {"dtype", "shape", "data"}}}`. */
export function createRawPostprocessor(): Postprocessor {
  return { kind: 'raw', run: (outputs) => ({ outputs: outputsToJson(outputs) }) };
}
