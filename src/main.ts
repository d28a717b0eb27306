#!/usr/bin/env node
/**
 * The only place that wires the pieces together: settings → status, metrics, registry → HTTP service →
 * models. The service listens before any model is loaded, so `GET /` answers the liveness probe at once and
 * `/v2/health/ready` turns 200 when the models are active.
 */
import { cpus } from 'node:os';
import { parseSettings, USAGE, type Settings } from './config/settings.js';
import { onnxRuntimeVersion } from './engine/onnx-session.js';
import { isEdgeInferError, messageOf } from './errors.js';
import { createLogger } from './log.js';
import { BUNDLED_MODEL } from './models/bundled.js';
import { deployModel, type ModelSpec } from './models/deploy.js';
import { ModelRegistry } from './models/registry.js';
import { buildApp } from './server/app.js';
import { createMetrics } from './status/metrics.js';
import { StatusStore } from './status/store.js';
import { SERVICE_VERSION } from './version.js';

/** IoT Edge stops a module with SIGTERM and kills it 10 s later (a bit less here, to finish cleanly). */
const SHUTDOWN_GRACE_MS = 8000;

function modelToServe(settings: Settings): ModelSpec {
  const session = { target: settings.target, ...(settings.threads !== undefined ? { threads: settings.threads } : {}) };
  if (settings.model) return { name: settings.model.name, version: '1', uri: settings.model.uri, sha256: settings.model.sha256, session };
  return { ...BUNDLED_MODEL, session };
}

async function main(): Promise<void> {
  let settings: Settings | 'help';
  try {
    settings = parseSettings(process.argv.slice(2), process.env);
  } catch (error) {
    process.stderr.write(`edge-infer: ${messageOf(error)}\n`);
    process.exit(2);
  }
  if (settings === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }

  const log = createLogger(settings.logLevel);
  const status = new StatusStore({
    version: SERVICE_VERSION,
    onnxruntime: onnxRuntimeVersion,
    startedAt: new Date().toISOString(),
    targets: { cpu: `available (${cpus().length} cores)`, gpu: 'not probed', fpga: 'not configured' },
  });
  const metrics = createMetrics(status);
  const registry = new ModelRegistry((model, error) => log.warn({ model: model.name, version: model.version, err: error }, 'releasing a version failed'));
  const spec = modelToServe(settings);

  const app = await buildApp({
    registry,
    status,
    metrics,
    log,
    defaultModel: () => spec.name,
    keys: settings.keys,
    maxBody: settings.maxBody,
    corsOrigins: settings.corsOrigins,
    version: SERVICE_VERSION,
    ...(settings.tls ? { https: settings.tls } : {}),
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: finishing requests in flight');
    setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS).unref();
    await app.close();
    registry.close();
    log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  await app.listen({ port: settings.port, host: settings.host });
  await deployModel(spec, { registry, status, storeDir: settings.store, log, onSwap: (name) => metrics.swaps.inc({ model: name }) });
}

main().catch((error: unknown) => {
  process.stderr.write(`edge-infer: ${isEdgeInferError(error) ? `${error.code}: ` : ''}${messageOf(error)}\n`);
  process.exit(1);
});
