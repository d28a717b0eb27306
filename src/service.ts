/**
 * The service built from settings: status store, engine, metrics, registry, store, reconciler, cameras and the
 * HTTP app, wired once. main.ts and the tests both build it here, so a test runs the wiring a device runs.
 * Listening, the desired-state source (file, flags or twin) and the hub link stay in main.ts.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Backoff } from './backoff.js';
import { Collector, type CollectTuning } from './collect/collector.js';
import type { DesiredState } from './config/desired-state.js';
import type { Settings } from './config/settings.js';
import { Engine } from './engine/engine.js';
import { onnxRuntimeVersion } from './engine/onnx-session.js';
import { BUNDLED_MODEL } from './models/bundled.js';
import { deployModel, type DeployContext, type ModelSpec } from './models/deploy.js';
import type { DownloadOptions } from './models/download.js';
import { defaultAdmissionLimits } from './models/admission.js';
import { Reconciler } from './models/reconciler.js';
import { ModelRegistry } from './models/registry.js';
import { Shadow } from './models/shadow.js';
import { ModelStore } from './models/store.js';
import { buildApp } from './server/app.js';
import { KeyRing } from './server/auth.js';
import { watchKeysFile } from './server/keys-file.js';
import { CameraManager, type CameraManagerContext } from './sources/cameras.js';
import type { OutputMessage } from './sources/result-message.js';
import { createMetrics, type Metrics } from './status/metrics.js';
import { RecentResults } from './status/recent-results.js';
import { StatusStore } from './status/store.js';
import { SERVICE_VERSION } from './version.js';

/** Timings a device wants long and a test wants short; the defaults are the device's. */
export interface ServiceTuning {
  /** Download retries, backoff and stall limit (the network comes from the settings, and the size cap unless given). */
  download?: Pick<DownloadOptions, 'retries' | 'backoffMs' | 'maxBackoffMs' | 'stallMs' | 'limit'>;
  cameraBackoff?: Backoff;
  /** How often camera counters (fps, dropped) are written to the status store. */
  cameraStatsIntervalMs?: number;
  /** Data collection's index rotation and upload retries. */
  collect?: CollectTuning;
}

export interface ServiceWiring {
  /** Where camera results go upstream; without it (standalone) they are scored and kept to the LAN. */
  publish?: (message: OutputMessage) => Promise<void>;
  tuning?: ServiceTuning;
}

export interface Service {
  status: StatusStore;
  metrics: Metrics;
  registry: ModelRegistry;
  store: ModelStore;
  engine: Engine;
  reconciler: Reconciler;
  cameras: CameraManager;
  /** Data collection: a tap on the registry, fed the desired state's `collect` section. */
  collector: Collector;
  /** What `cameras` was made with (a second manager on the same models takes it too). */
  cameraContext: CameraManagerContext;
  app: FastifyInstance;
  /** A desired state reaches the models and the cameras. */
  applyDesired(state: DesiredState): void;
  /** Deploys one version outside the reconciler (tests, and nothing else, place versions this way). */
  deploy(spec: ModelSpec): Promise<boolean>;
  /**
   * Stops the cameras, closes the app (requests in flight finish) and releases the models. A deploy under way
   * is not waited for: the store is safe to leave at any step (`reconciler.settled()` waits, where wanted).
   */
  close(): Promise<void>;
}

export async function createService(settings: Settings, log: Logger, wiring: ServiceWiring = {}): Promise<Service> {
  const tuning = wiring.tuning ?? {};
  const status = new StatusStore({ version: SERVICE_VERSION, onnxruntime: onnxRuntimeVersion, startedAt: new Date().toISOString(), targets: {} });
  const engine = new Engine({
    spinWait: settings.spinWait,
    onProbe: (name, probe) => status.setTarget(name, probe),
    // Batches run only once the service is built, so `metrics` (made below, after the registry) is there by then.
    onBatch: (slot, rows, padding) => {
      metrics.batchSize.observe({ model: slot }, rows);
      if (padding > 0) metrics.batchPadding.inc({ model: slot }, padding);
    },
  });
  await engine.probe();
  const derived = defaultAdmissionLimits(settings.threads);
  const recent = new RecentResults();
  const registry = new ModelRegistry(
    (model, error) => log.warn({ model: model.name, version: model.version, err: error }, 'releasing a version failed'),
    { inFlight: settings.maxInFlight ?? derived.inFlight, waiting: settings.maxWaiting ?? derived.waiting, ...(settings.maxQueueWait ? { maxQueueWait: settings.maxQueueWait } : {}) },
    (outcome) => recent.record(outcome),
  );
  const metrics = createMetrics(status, () => registry.admissionCounts());
  const shadow = new Shadow(registry, {
    onOutcome: (slot, outcome) => metrics.shadowRuns.inc({ model: slot, outcome }),
    onSnapshot: (slot, candidate, snapshot) => status.updateCandidate(slot, { version: candidate, shadow: snapshot }),
    // The reconciler is made below; a verdict needs samples, which need requests, which need the service built.
    onVerdict: (slot, verdict) => reconciler.judged(slot, verdict),
    onDisagreement: (call, candidate) => collector.disagreement(call, candidate),
  });
  registry.addTap(shadow);
  const store = new ModelStore(settings.store, settings.keepVersions);
  await mkdir(settings.store, { recursive: true });
  const storeProblem = await store.open();
  if (storeProblem) log.warn(storeProblem);
  const collector = await Collector.open({ root: path.join(settings.store, 'collected'), status, metrics, log, ...(tuning.collect ? { tuning: tuning.collect } : {}) });
  registry.addTap(collector);
  const context: DeployContext = {
    registry,
    status,
    store,
    log,
    engine,
    shadow,
    download: { network: settings.ca ? { ca: settings.ca } : {}, limit: { bytes: settings.maxDownload, from: 'setting --max-download' }, ...tuning.download },
    onSwap: (name) => metrics.swaps.inc({ model: name }),
    onDownloaded: (ok) => metrics.downloads.inc({ result: ok ? 'verified' : 'failed' }),
    maxUnpackedBytes: settings.maxUnpacked,
    maxBody: settings.maxBody,
    scriptLimits: settings.scriptLimits,
  };
  const reconciler = new Reconciler(context, { ...BUNDLED_MODEL, target: settings.target, ...(settings.threads ? { threads: settings.threads } : {}) });
  const cameraContext: CameraManagerContext = {
    registry,
    status,
    log,
    defaultModel: () => reconciler.defaultModel(),
    ...(wiring.publish ? { publish: wiring.publish } : {}),
    ...(settings.ca ? { network: { ca: settings.ca } } : {}),
    ffmpeg: settings.ffmpeg,
    onFrame: (camera, outcome) => metrics.cameraFrames.inc({ camera, outcome }),
    backoff: tuning.cameraBackoff ?? { firstMs: 1000, mostMs: 60_000 },
    statsIntervalMs: tuning.cameraStatsIntervalMs ?? 10_000,
  };
  const cameras = new CameraManager(cameraContext);
  const keys = new KeyRing(settings.keys);
  const stopWatchingKeys = settings.keysFile ? watchKeysFile(settings.keysFile, keys, log) : () => undefined;
  const app = await buildApp({
    registry,
    status,
    metrics,
    log,
    defaultModel: () => reconciler.defaultModel(),
    activate: (name, version) => reconciler.activate(name, version),
    promote: (name, by) => reconciler.promote(name, by),
    storedVersions: (name) => store.versions(name).map((v) => v.version),
    recent,
    cameras,
    keys,
    maxBody: settings.maxBody,
    corsOrigins: settings.corsOrigins,
    version: SERVICE_VERSION,
    ...(settings.tls ? { https: settings.tls } : {}),
  });
  return {
    status,
    metrics,
    registry,
    store,
    engine,
    reconciler,
    cameras,
    cameraContext,
    app,
    collector,
    applyDesired: (state) => {
      reconciler.apply(state);
      cameras.apply(state.cameras, state.output);
      collector.apply(state.collect);
    },
    deploy: (spec) => deployModel(spec, context),
    close: async () => {
      cameras.stop();
      stopWatchingKeys();
      await app.close();
      // What was kept is written and its index files closed before the versions go (the tensor mode reads their plans).
      await collector.close();
      registry.close();
    },
  };
}
