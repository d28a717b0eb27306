/**
 * `GET /status` and `GET /metrics`, and the per-request bookkeeping that feeds them: one debug log line,
 * a counter and a latency observation per response.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { BaseLogger } from 'pino';
import type { ServiceOptions } from '../app.js';

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
export function createRequestRecorder({ status, metrics, registry }: Pick<ServiceOptions, 'status' | 'metrics' | 'registry'>): (done: FinishedRequest) => void {
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

async function observability(app: FastifyInstance, options: ServiceOptions): Promise<void> {
  const { status, metrics } = options;
  const record = createRequestRecorder(options);

  // fastify-plugin shares this hook with the whole service, so it sees every route.
  app.addHook('onResponse', async (request, reply) => {
    const { method, url, modelName, log } = request;
    record({ method, url, route: request.routeOptions.url ?? 'unknown', modelName, statusCode: reply.statusCode, ms: reply.elapsedTime, log });
  });

  app.get('/status', async () => status.snapshot());

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}

export const observabilityRoutes = fp(observability, { name: 'edge-infer-observability' });
