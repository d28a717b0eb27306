/**
 * Which calls are kept: decided on the request path, so it only reads the result, never copies or encodes it.
 */
import type { CollectSettings } from './settings.js';

/**
 * The best score in a result the built-in postprocessors make (`detections`, `predictions`, or a batch of
 * either); 0 for an answer that found nothing; null when the result carries no score (raw tensors, most entry
 * scripts' answers), which `lowConfidence` never keeps since nothing says it is unsure.
 */
export function confidenceOf(output: unknown): number | null {
  if (output === null || typeof output !== 'object') return null;
  const result = output as { detections?: unknown; predictions?: unknown; batch?: unknown };
  const listed = result.detections ?? result.predictions;
  if (Array.isArray(listed)) return bestScore(listed);
  if (Array.isArray(result.batch)) {
    const scores = result.batch.map(confidenceOf).filter((score): score is number => score !== null);
    return scores.length > 0 ? Math.min(...scores) : null;
  }
  return null;
}

function bestScore(entries: unknown[]): number {
  let best = 0;
  for (const entry of entries) {
    const score = (entry as { score?: unknown } | null)?.score;
    if (typeof score === 'number' && score > best) best = score;
  }
  return best;
}

/** Whether an active version's successful call is kept (disagreements are chosen by the shadow runner instead). */
export function keepsCall(settings: CollectSettings, confidence: number | null, random: () => number = Math.random): boolean {
  switch (settings.mode) {
    case 'all':
      return true;
    case 'sample':
      return random() < settings.sampleRate;
    case 'lowConfidence':
      return confidence !== null && confidence < settings.belowConfidence;
    case 'disagreements':
      return false;
  }
}
