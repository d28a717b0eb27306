/**
 * Starts the real service in the test's process on a loopback port: settings parsed from flags as on a device,
 * the service built by the same `createService` as main.ts, models placed through the reconciler. Only timings
 * are shortened (retries, camera backoff). Each test file gets its own service (and its own metrics registry).
 */
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { parseSettings, type Settings } from '../../src/config/settings.js';
import { createLogger } from '../../src/log.js';
import { BUNDLED_MODEL } from '../../src/models/bundled.js';
import type { ModelSpec } from '../../src/models/deploy.js';
import type { Reconciler } from '../../src/models/reconciler.js';
import type { ModelRegistry } from '../../src/models/registry.js';
import type { ModelStore } from '../../src/models/store.js';
import { createService, type ServiceTuning } from '../../src/service.js';
import type { CameraManager, CameraManagerContext } from '../../src/sources/cameras.js';
import type { OutputMessage } from '../../src/sources/result-message.js';
import type { StatusStore } from '../../src/status/store.js';

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
  /** Models the desired state names before the service is handed over; the bundled face detector when unset. */
  models?: ModelSpec[];
  /** A store folder to reuse (a restart); a new temporary one when unset. */
  storeDir?: string;
  download?: ServiceTuning['download'];
  defaultModel?: string;
  keys?: string[];
  maxBody?: number;
  corsOrigins?: string[];
  /** More flags, as a device would be started with (e.g. admission limits). */
  args?: string[];
}

export const bundledFace: ModelSpec = BUNDLED_MODEL;

/** Quick retries and counters, so that tests see a download or a camera come back within seconds. */
const TEST_TUNING: ServiceTuning = { download: { backoffMs: 20, stallMs: 1000, retries: 3 }, cameraBackoff: { firstMs: 250, mostMs: 2000 }, cameraStatsIntervalMs: 500 };

export async function startService(options: TestServiceOptions = {}): Promise<TestService> {
  const storeDir = options.storeDir ?? (await mkdtemp(path.join(tmpdir(), 'edge-infer-store-')));
  const settings = parseSettings(
    [
      ...['--store', storeDir, '--port', '0', '--host', '127.0.0.1', '--log-level', process.env.TEST_LOG_LEVEL ?? 'silent'],
      ...(options.maxBody ? ['--max-body', String(options.maxBody)] : []),
      ...(options.corsOrigins?.length ? ['--cors', options.corsOrigins.join(',')] : []),
      ...(options.args ?? []),
    ],
    { EDGE_INFER_KEYS: (options.keys ?? []).join(',') },
  ) as Settings;
  const published: OutputMessage[] = [];
  const service = await createService(settings, createLogger(settings.logLevel), {
    publish: async (message) => void published.push(message),
    tuning: { ...TEST_TUNING, ...(options.download ? { download: options.download } : {}) },
  });
  await service.app.listen({ port: settings.port, host: settings.host });
  const models = options.models ?? [bundledFace];
  if (models.length > 0) {
    service.reconciler.apply({
      // A desired slot carries a package's settings inline, beside its version and uri.
      models: Object.fromEntries(models.map(({ name, settings, ...slot }) => [name, { ...slot, ...settings }])),
      ...(options.defaultModel ? { defaultModel: options.defaultModel } : {}),
    });
    await service.reconciler.settled();
  }
  const { port } = service.app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    app: service.app,
    registry: service.registry,
    status: service.status,
    storeDir,
    store: service.store,
    reconciler: service.reconciler,
    cameras: service.cameras,
    cameraContext: service.cameraContext,
    published,
    deploy: (spec) => service.deploy(spec),
    close: async () => {
      await service.reconciler.settled();
      await service.close();
    },
  };
}
