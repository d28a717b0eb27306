/**
 * The per-request bookkeeping behind `GET /status` and `GET /metrics`: one debug log line, and a counter and a
 * latency observation per request to a slot. Fastify's routes (routes/observability.ts) and the lean infer path
 * (lean-infer.ts) both end here, so the two count alike.
 */
import type { BaseLogger } from 'pino';
import type { ModelRegistry } from '../models/registry.js';
import type { Metrics } from '../status/metrics.js';
import type { StatusStore } from '../status/store.js';

/** One finished exchange, as the bookkeeping reads it: from fastify's hook or the lean infer path alike. */
export interface FinishedRequest {
  method: string;
  url: string;
  /** The route's pattern (`/v2/models/:name/infer`), the metrics' label: a bounded set, unlike URLs. */
  route: string;
  /** The slot the request went to; empty for routes that name none. */
  modelName: string;
  statusCode: number;
  ms: number;
  log: Pick<BaseLogger, 'debug'>;
}

/** The per-request bookkeeping: one debug log line, and a counter and a latency observation per slot request. */
export function createRequestRecorder({ status, metrics, registry }: { status: StatusStore; metrics: Metrics; registry: ModelRegistry }): (done: FinishedRequest) => void {
  return ({ method, url, route, modelName, statusCode, ms, log }) => {
    log.debug({ method, url, statusCode, ms: Math.round(ms * 100) / 100 }, 'request');
    // Label values and counters only for slots that exist: a name from a request path that names no slot
    // (404) would otherwise add a series per name, without bound.
    if (!modelName || !registry.hasSlot(modelName)) return;
    status.countRequest(modelName, statusCode < 400);
    metrics.requests.inc({ route, model: modelName, code: statusCode });
    metrics.requestSeconds.observe({ route, model: modelName }, ms / 1000);
  };
}
