import type { ModelVersion, ScoreRequest } from '../engine/loaded-version.js';
import type { ModelRegistry, ScoreSource } from './registry.js';

/** Measures one scoring call; returns the function that ends the measurement. */
export type ScoreTimer = (model: ModelVersion) => () => void;

/**
 * Scores `request` on the active version of `name` (undefined: no default model), through the slot's admission
 * and under a lease, the same way for every source. `signal`: the caller went away; a request still waiting is
 * not scored.
 */
export function scoreOn(
  registry: ModelRegistry,
  source: ScoreSource,
  name: string | undefined,
  request: ScoreRequest,
  timer?: ScoreTimer,
  signal?: AbortSignal,
): Promise<{ result: unknown; model: ModelVersion }> {
  return registry.use(
    source,
    name,
    undefined,
    async (model) => {
      const stop = timer?.(model);
      try {
        return { result: await model.score(request), model };
      } finally {
        stop?.();
      }
    },
    signal,
  );
}
