/**
 * `GET /status` and `GET /metrics`, and the hook that feeds them from every fastify route (request-record.ts).
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { ServiceOptions } from '../app.js';
import { createRequestRecorder } from '../request-record.js';

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
