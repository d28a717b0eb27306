/**
 * The HTTP service, built but not listening (fastify's buildApp habit): tests drive it with inject() or a
 * real socket, main.ts calls listen(). Routes live in routes/, one file per protocol.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import cors from '@fastify/cors';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import type { ModelRegistry } from '../models/registry.js';
import type { Metrics } from '../status/metrics.js';
import type { RecentResults } from '../status/recent-results.js';
import type { StatusStore } from '../status/store.js';
import { createKeyGate, installKeyAuth, type KeyRing } from './auth.js';
import { errorHandlingOptions, installErrorHandling } from './http-errors.js';
import { createLeanInfer, type LeanHandler } from './lean-infer.js';
import { OipInfer } from './oip-infer.js';
import { installRequestIdHeaders, requestIdOf } from './request-id.js';
import { installRouteNameCheck } from './route-names.js';
import { adminRoutes } from './routes/admin.js';
import type { PromotedBy } from '../status/store.js';
import { azureMlRoutes } from './routes/azureml.js';
import { cameraRoutes, type CameraFrames } from './routes/cameras.js';
import { createRequestRecorder } from './request-record.js';
import { observabilityRoutes } from './routes/observability.js';
import { oipRoutes } from './routes/oip.js';
import { uiEventRoutes } from './routes/ui-events.js';
import { uiRoutes } from './routes/ui.js';

export interface ServiceOptions {
  registry: ModelRegistry;
  status: StatusStore;
  metrics: Metrics;
  log: Logger;
  /** The slot `/score` answers for; read per request because the desired state can change it. */
  defaultModel: () => string | undefined;
  /** Scoring keys (a ring when a keys file may change them); none means no auth. */
  keys: readonly string[] | KeyRing;
  /** Largest accepted body, in bytes. */
  maxBody: number;
  /** Allowed CORS origins (`*` for any); none turns CORS off. */
  corsOrigins: readonly string[];
  /** The service's own version, for /v2 and swagger.json. */
  version: string;
  https?: { cert: Buffer; key: Buffer };
  /** Switches a model to a stored version (the rollback); rejects with the reason it did not become active. */
  activate?: (name: string, version: string) => Promise<void>;
  /** Makes a model's candidate its active version; rejects with EI_NO_CANDIDATE when it has none. */
  promote?: (name: string, by: PromotedBy) => Promise<void>;
  /** The cameras' last scored frames, for `/cameras/{id}/snapshot`. */
  cameras?: CameraFrames;
  /** The versions the model store keeps for a model, newest first (the status page's rollback buttons). */
  storedVersions?: (name: string) => string[];
  /** Recent scoring results and errors, every source (the status page's list). */
  recent?: RecentResults;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The model slot a scoring request went to, for metrics and counters. */
    modelName: string;
  }
}

export async function buildApp(options: ServiceOptions): Promise<FastifyInstance> {
  const oipInfer = new OipInfer(options);
  const keyGate = createKeyGate(options.keys, () => options.metrics.authFailures.inc());
  let closing = false;
  // With CORS on, answers carry headers that @fastify/cors decides: every request then takes fastify's path.
  const lean =
    options.corsOrigins.length === 0
      ? createLeanInfer({ oipInfer, keyGate, record: createRequestRecorder(options), log: options.log, closing: () => closing })
      : undefined;
  const app = Fastify({
    loggerInstance: options.log,
    // Request logs are ours, at debug (routes/observability.ts): fastify's defaults would log at info.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.maxBody,
    genReqId: requestIdOf,
    ...errorHandlingOptions(options.maxBody),
    ...(lean ? { serverFactory: serverWith(lean, options.https) } : {}),
    ...(options.https ? { https: options.https } : {}),
  }) as unknown as FastifyInstance;
  app.addHook('preClose', async () => void (closing = true));
  app.decorateRequest('modelName', '');
  installErrorHandling(app, options.maxBody);
  installRequestIdHeaders(app);
  if (options.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: options.corsOrigins.includes('*') ? true : [...options.corsOrigins],
      exposedHeaders: ['x-request-id', 'x-ms-request-id'],
    });
  }
  installKeyAuth(app, keyGate);
  installRouteNameCheck(app, options.registry, () => options.cameras?.ids() ?? []);
  await app.register(observabilityRoutes, options);
  await app.register(azureMlRoutes, options);
  await app.register(oipRoutes, { ...options, oipInfer });
  await app.register(adminRoutes, options);
  await app.register(cameraRoutes, options);
  await app.register(uiRoutes, options);
  await app.register(uiEventRoutes, options);
  return app;
}

/**
 * The server fastify would make for itself (its timeouts, HTTPS when asked), whose requests meet the lean
 * infer path first (lean-infer.ts); fastify's `inject()` does not pass here and reaches fastify's routes only.
 */
function serverWith(lean: LeanHandler, https: ServiceOptions['https']): NonNullable<FastifyServerOptions['serverFactory']> {
  return (fastifyHandler, settings) => {
    const handle = (request: IncomingMessage, response: ServerResponse) => {
      if (!lean(request, response)) fastifyHandler(request, response);
    };
    const server: Server = https ? createHttpsServer(https, handle) : createHttpServer(handle);
    // fastify has filled in its defaults by now (keep-alive 72 s, no request or connection timeout).
    const { keepAliveTimeout, requestTimeout, connectionTimeout } = settings as FastifyServerOptions;
    server.keepAliveTimeout = keepAliveTimeout!;
    server.requestTimeout = requestTimeout!;
    server.setTimeout(connectionTimeout!);
    return server;
  };
}
