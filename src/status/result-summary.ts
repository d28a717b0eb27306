/**
 * A few words on what one scoring call returned, for the status page's recent results: "3 faces",
 * "top-1 cat 0.91", "output0 1×1000". Read from the shapes our postprocessors and the OIP encoder produce; any
 * other result (an entry script's) is named by its fields, never copied whole.
 */
import type { ModelVersion } from '../engine/loaded-version.js';
import type { EncodedInferResponse } from '../pipeline/oip-codec.js';

type Fields = Record<string, unknown>;

const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value);

/** `result`: what the model's score() returned; `model`: the version that returned it. */
export function summarizeResult(result: unknown, model: ModelVersion | undefined): string {
  if (!isObject(result)) return Array.isArray(result) ? plural(result.length, 'item') : String(result).slice(0, 60);
  if (Array.isArray(result.detections)) return detections(result.detections as unknown[], model?.settings.postprocess?.kind === 'blazeface' ? 'face' : 'detection');
  if (Array.isArray(result.predictions)) return topOne(result.predictions as unknown[]);
  if (Array.isArray(result.batch)) return `batch of ${result.batch.length}`;
  if (isObject(result.outputs)) return tensors(Object.entries(result.outputs).map(([name, tensor]) => ({ name, shape: (tensor as Fields | null)?.shape })));
  const keys = Object.keys(result);
  return keys.length === 0 ? 'empty result' : `fields: ${keys.slice(0, 4).join(', ')}${keys.length > 4 ? ', …' : ''}`;
}

/** An Open Inference Protocol answer: its output tensors' names and shapes (from the JSON header when binary follows). */
export function summarizeInferResponse(response: EncodedInferResponse): string {
  const { body, headerLength } = response;
  const head = Buffer.isBuffer(body) ? (JSON.parse(body.subarray(0, headerLength ?? body.length).toString('utf8')) as Fields) : body;
  return Array.isArray(head.outputs) ? tensors(head.outputs as Fields[]) : 'no outputs';
}

/** "3 faces", or by label where the model gives one: "1 person, 2 cars". */
function detections(found: unknown[], unlabelled: string): string {
  if (found.length === 0) return `no ${unlabelled}s`;
  const counts = new Map<string, number>();
  for (const detection of found) {
    const label = isObject(detection) && typeof detection.label === 'string' ? detection.label : unlabelled;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return [...counts].map(([label, n]) => plural(n, label)).join(', ');
}

/** "top-1 cat 0.91" (the class index where the model has no labels). */
function topOne(predictions: unknown[]): string {
  const best = predictions[0];
  if (!isObject(best)) return 'no predictions';
  const name = typeof best.label === 'string' ? best.label : `class ${String(best.index)}`;
  return `top-1 ${name} ${typeof best.score === 'number' ? best.score.toFixed(2) : ''}`.trim();
}

/** "output0 1×1000" for one or two tensors, "5 outputs" for more. */
function tensors(outputs: { name?: unknown; shape?: unknown }[]): string {
  if (outputs.length > 2) return plural(outputs.length, 'output');
  return outputs.map(({ name, shape }) => `${String(name)} ${Array.isArray(shape) ? shape.join('×') : ''}`.trim()).join(', ') || 'no outputs';
}

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
