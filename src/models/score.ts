import type { ModelVersion, ScoreRequest } from '../engine/loaded-version.js';
import { decodeImage, type DecodedImage } from '../pipeline/image.js';
import type { ModelRegistry, ScoreSource } from './registry.js';

/** Measures one scoring call; returns the function that ends the measurement. */
export type ScoreTimer = (model: ModelVersion) => () => void;

/**
 * Scores `request` on the active version of `name` (undefined: no default model), through the slot's admission
 * and under a lease, the same way for every source. `signal`: the caller went away; a request still waiting is
 * not scored.
 *
 * An encoded image starts decoding when its turn is near (among the next in line: Admission.run), so that it
 * decodes while the requests before it run rather than in its own turn: the turns (one per core's worth of
 * inference threads) then go to inference, and decoding, on libuv's threads, overlaps it as it does when nothing
 * bounds the requests.
 */
export function scoreOn(
  registry: ModelRegistry,
  source: ScoreSource,
  name: string | undefined,
  request: ScoreRequest,
  timer?: ScoreTimer,
  signal?: AbortSignal,
): Promise<{ result: unknown; model: ModelVersion }> {
  let decoding: Promise<DecodedImage> | undefined;
  const decodeNow =
    request.kind === 'image'
      ? () => {
          const plan = registry.active(name!)?.imagePlan;
          if (!plan) return;
          decoding = decodeImage(request.image, plan);
          // A request that leaves the queue never awaits it; its failure (EI_BAD_IMAGE) is thrown in the turn.
          decoding.catch(() => undefined);
        }
      : undefined;
  return registry.use(
    source,
    name,
    undefined,
    async (model) => {
      const stop = timer?.(model);
      try {
        return { result: await model.score(request, await decoding), model };
      } finally {
        stop?.();
      }
    },
    signal,
    decodeNow,
  );
}
