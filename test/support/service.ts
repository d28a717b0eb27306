/**
 * Starts the real HTTP service in the test's process on a loopback port, with real models loaded through the
 * same deploy path as main.ts. Each test file gets its own service (and its own metrics registry).
 */
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Engine } from '../../src/engine/engine.js';
import { createLogger } from '../../src/log.js';
import { BUNDLED_MODEL } from '../../src/models/bundled.js';
import { deployModel, type DeployContext, type ModelSpec } from '../../src/models/deploy.js';
import type { DownloadOptions } from '../../src/models/download.js';
import { Reconciler } from '../../src/models/reconciler.js';
import { ModelRegistry } from '../../src/models/registry.js';
import { ModelStore } from '../../src/models/store.js';
import { buildApp } from '../../src/server/app.js';
import { CameraManager, type CameraManagerContext } from '../../src/sources/cameras.js';
import type { OutputMessage } from '../../src/sources/result-message.js';
import { createMetrics } from '../../src/status/metrics.js';
import { StatusStore } from '../../src/status/store.js';

export interface TestService {
  url: string;
  app: FastifyInstance;
  registry: ModelRegistry;
  status: StatusStore;
  storeDir: string;
  store: ModelStore;
  reconciler: Reconciler;
  /** Cameras scoring into this service's models; what they send upstream lands in `published`. */
  cameras: CameraManager;
  /** What `cameras` was made with, for a test's own manager. */
  cameraContext: CameraManagerContext;
  published: OutputMessage[];
  deploy(spec: ModelSpec): Promise<boolean>;
  close(): Promise<void>;
}

export interface TestServiceOptions {
  /** Models to deploy before the service is handed over; the bundled face detector when unset. */
  models?: ModelSpec[];
  /** A store folder to reuse (a restart); a new temporary one when unset. */
  storeDir?: string;
  download?: DownloadOptions;
  defaultModel?: string;
  keys?: string[];
  maxBody?: number;
  corsOrigins?: string[];
}

export const bundledFace: ModelSpec = BUNDLED_MODEL;

export async function startService(options: TestServiceOptions = {}): Promise<TestService> {
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  const status = new StatusStore({ version: 'test', onnxruntime: 'test', startedAt: new Date().toISOString(), targets: {} });
  const metrics = createMetrics(status);
  const registry = new ModelRegistry(() => undefined);
  const storeDir = options.storeDir ?? (await mkdtemp(path.join(tmpdir(), 'edge-infer-store-')));
  const store = new ModelStore(storeDir);
  await store.open();
  const context: DeployContext = {
    registry,
    status,
    store,
    log,
    engine: new Engine({ onProbe: (name, probe) => status.setTarget(name, probe) }),
    download: options.download ?? { backoffMs: 20, stallMs: 1000, retries: 3 },
    onSwap: (name) => metrics.swaps.inc({ model: name }),
    onDownloaded: (ok) => metrics.downloads.inc({ result: ok ? 'verified' : 'failed' }),
  };
  const reconciler = new Reconciler(context, bundledFace);
  const models = options.models ?? [bundledFace];
  const published: OutputMessage[] = [];
  const cameraContext: CameraManagerContext = {
    registry,
    status,
    log,
    defaultModel: () => options.defaultModel ?? reconciler.defaultModel() ?? models[0]?.name,
    publish: async (message) => void published.push(message),
    onFrame: (camera, outcome) => metrics.cameraFrames.inc({ camera, outcome }),
    // Quick retries and counters, so that tests see a camera come back within seconds.
    backoff: { firstMs: 250, mostMs: 2000 },
    statsIntervalMs: 500,
    ffmpeg: 'ffmpeg',
  };
  const cameras = new CameraManager(cameraContext);
  const app = await buildApp({
    registry,
    status,
    metrics,
    log,
    defaultModel: () => options.defaultModel ?? reconciler.defaultModel() ?? models[0]?.name,
    activate: (name, version) => reconciler.activate(name, version),
    cameras,
    keys: options.keys ?? [],
    maxBody: options.maxBody ?? 16 * 1024 * 1024,
    corsOrigins: options.corsOrigins ?? [],
    version: 'test',
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const deploy = (spec: ModelSpec) => deployModel(spec, context);
  for (const spec of models) await deploy(spec);
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    registry,
    status,
    storeDir,
    store,
    reconciler,
    cameras,
    cameraContext,
    published,
    deploy,
    close: async () => {
      cameras.stop();
      await reconciler.settled();
      await app.close();
      registry.close();
    },
  };
}
