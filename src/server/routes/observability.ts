/**
 * `GET /status` and `GET /metrics`, and the per-request bookkeeping that feeds them: one debug log line,
 * a counter and a latency observation per response.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { ServiceOptions } from '../app.js';

async function observability(app: FastifyInstance, options: ServiceOptions): Promise<void> {
  const { status, metrics, registry } = options;

  // fastify-plugin shares this hook with the whole service, so it sees every route.
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unknown';
    const elapsed = reply.elapsedTime;
    request.log.debug({ method: request.method, url: request.url, statusCode: reply.statusCode, ms: Math.round(elapsed * 100) / 100 }, 'request');
    // Label values and counters only for slots that exist: a name from a request path that names no slot
    // (404) would otherwise add a series per name, without bound.
    if (!request.modelName || !registry.slots().includes(request.modelName)) return;
    const ok = reply.statusCode < 400;
    status.countRequest(request.modelName, ok);
    metrics.requests.inc({ route, model: request.modelName, code: reply.statusCode });
    metrics.requestSeconds.observe({ route, model: request.modelName }, elapsed / 1000);
  });

  app.get('/status', async () => status.snapshot());

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}

export const observabilityRoutes = fp(observability, { name: 'edge-infer-observability' });
