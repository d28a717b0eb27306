/**
 * The one retry schedule: the wait doubles from `firstMs` up to `mostMs`, and is spread over its upper half at
 * random so that many clients (a fleet after an edgeHub restart, cameras behind one switch) do not retry in step.
 */
export interface Backoff {
  firstMs: number;
  mostMs: number;
}

/** The wait before retry number `attempt` (0 for the first retry). */
export function backoffDelay(attempt: number, { firstMs, mostMs }: Backoff): number {
  const ceiling = Math.min(mostMs, firstMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling * (0.5 + Math.random() / 2));
}
