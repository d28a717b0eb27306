/**
 * Classification: scores (or logits, with `softmax: true`) → the top K classes with their labels.
 */
import { readFile } from 'node:fs/promises';
import { EdgeInferError, messageOf } from '../../errors.js';
import type { ClassificationSettings } from '../../models/manifest.js';
import { resolveInside } from '../../models/package-paths.js';
import type { Postprocessor, PostprocessorContext } from './types.js';

export interface ClassPrediction {
  index: number;
  label?: string;
  score: number;
}

export async function createClassificationPostprocessor(
  settings: ClassificationSettings,
  context: PostprocessorContext,
): Promise<Postprocessor> {
  const outputs = context.signature.outputs;
  const output = settings.output ?? outputs[0]?.name;
  if (!output || !outputs.some((o) => o.name === output)) {
    throw new EdgeInferError('EI_PACKAGE_INVALID', [
      context.modelName,
      `postprocess.output "${String(output)}" is not an output of the model (${outputs.map((o) => o.name).join(', ')})`,
    ]);
  }
  const labels = await loadLabels(settings.labels, context);
  const topK = settings.topK ?? 5;
  const softmax = settings.softmax ?? false;
  return {
    kind: 'classification',
    run(results) {
      const tensor = results[output]!;
      const classes = tensor.dims[tensor.dims.length - 1] ?? 0;
      const rows = classes > 0 ? tensor.data.length / classes : 0;
      const batch: ClassPrediction[][] = [];
      for (let row = 0; row < rows; row++) {
        const scores = Array.from(tensor.data.subarray(row * classes, (row + 1) * classes) as Float32Array);
        batch.push(topClasses(softmax ? applySoftmax(scores) : scores, topK, labels));
      }
      return batch.length === 1 ? { predictions: batch[0] } : { batch: batch.map((predictions) => ({ predictions })) };
    },
  };
}

async function loadLabels(labels: ClassificationSettings['labels'], context: PostprocessorContext): Promise<string[] | undefined> {
  if (labels === undefined || Array.isArray(labels)) return labels;
  const file = resolveInside(context.packageDir, labels);
  try {
    return (await readFile(file, 'utf8')).split(/\r?\n/).filter((line, i, all) => line !== '' || i < all.length - 1);
  } catch (error) {
    throw new EdgeInferError('EI_PACKAGE_INVALID', [context.modelName, `labels file "${labels}": ${messageOf(error)}`], error);
  }
}

function applySoftmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

function topClasses(scores: number[], k: number, labels: string[] | undefined): ClassPrediction[] {
  return scores
    .map((score, index) => ({ index, score }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k)
    .map(({ index, score }) => (labels?.[index] === undefined ? { index, score } : { index, label: labels[index], score }));
}
