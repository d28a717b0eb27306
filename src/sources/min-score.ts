/**
 * `minScore` for camera frames: detections below it are left out, and a frame where nothing reaches it is not
 * worth a message. Results the module cannot read scores from (raw tensors, entry scripts' own shapes) always
 * count as found.
 */

interface Scored {
  score?: unknown;
}

export function applyMinScore(result: unknown, minScore: number): { result: unknown; found: boolean } {
  if (result === null || typeof result !== 'object') return { result, found: true };
  const { detections, predictions } = result as { detections?: unknown; predictions?: unknown };
  const reaches = (entry: Scored) => typeof entry.score === 'number' && entry.score >= minScore;
  if (Array.isArray(detections)) {
    const kept = (detections as Scored[]).filter(reaches);
    return { result: { ...result, detections: kept }, found: kept.length > 0 };
  }
  // Classification: the top classes stay as they are (they are the answer); only whether one reaches counts.
  if (Array.isArray(predictions)) return { result, found: (predictions as Scored[]).some(reaches) };
  return { result, found: true };
}
