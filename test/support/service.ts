/**
 * Starts the real HTTP service in the test's process on a loopback port, with real models loaded through the
 * same deploy path as main.ts. Each test file gets its own service (and its own metrics registry).
 */
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../../src/log.js';
import { BUNDLED_MODEL } from '../../src/models/bundled.js';
import { deployModel, type ModelSpec } from '../../src/models/deploy.js';
import { ModelRegistry } from '../../src/models/registry.js';
import { buildApp } from '../../src/server/app.js';
import { createMetrics } from '../../src/status/metrics.js';
import { StatusStore } from '../../src/status/store.js';

export interface TestService {
  url: string;
  app: FastifyInstance;
  registry: ModelRegistry;
  status: StatusStore;
  storeDir: string;
  deploy(spec: Omit<ModelSpec, 'session'>): Promise<boolean>;
  close(): Promise<void>;
}

export interface TestServiceOptions {
  /** Models to deploy before the service is handed over; the bundled face detector when unset. */
  models?: Array<Omit<ModelSpec, 'session'>>;
  defaultModel?: string;
  keys?: string[];
  maxBody?: number;
  corsOrigins?: string[];
}

export const bundledFace: Omit<ModelSpec, 'session'> = BUNDLED_MODEL;

export async function startService(options: TestServiceOptions = {}): Promise<TestService> {
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  const status = new StatusStore({ version: 'test', onnxruntime: 'test', startedAt: new Date().toISOString(), targets: { cpu: 'available' } });
  const metrics = createMetrics(status);
  const registry = new ModelRegistry(() => undefined);
  const storeDir = await mkdtemp(path.join(tmpdir(), 'edge-infer-store-'));
  const models = options.models ?? [bundledFace];
  const app = await buildApp({
    registry,
    status,
    metrics,
    log,
    defaultModel: () => options.defaultModel ?? models[0]?.name,
    keys: options.keys ?? [],
    maxBody: options.maxBody ?? 16 * 1024 * 1024,
    corsOrigins: options.corsOrigins ?? [],
    version: 'test',
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const deploy = (spec: Omit<ModelSpec, 'session'>) =>
    deployModel({ ...spec, session: { target: 'cpu' } }, { registry, status, storeDir, log, onSwap: (name) => metrics.swaps.inc({ model: name }) });
  for (const spec of models) await deploy(spec);
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    registry,
    status,
    storeDir,
    deploy,
    close: async () => {
      await app.close();
      registry.close();
    },
  };
}
