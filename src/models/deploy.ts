/**
 * Makes one model slot serve one version: locate (download, unpack), read the package, load, warm up, then
 * switch atomically. Status follows each step; on failure the version already serving keeps serving and the
 * slot's status says why. The lifecycle reconciler drives this from the desired state.
 */
import type { Logger } from 'pino';
import { isEdgeInferError, messageOf } from '../errors.js';
import type { SessionSettings } from '../engine/onnx-session.js';
import type { StatusStore } from '../status/store.js';
import { locateModel } from './locate.js';
import type { ModelSettings } from './manifest.js';
import { loadModelVersion } from './model-version.js';
import { readModelPackage } from './package.js';
import type { ModelRegistry } from './registry.js';

export interface ModelSpec {
  name: string;
  version: string;
  uri: string;
  sha256?: string;
  /** Inline settings; they override the package's edge-infer.json. */
  settings?: ModelSettings;
  session: SessionSettings;
}

export interface DeployContext {
  registry: ModelRegistry;
  status: StatusStore;
  storeDir: string;
  log: Logger;
  /** Called after each successful switch (metrics). */
  onSwap?: (name: string) => void;
}

/** Never throws: the outcome is in the status store. Returns whether the version became active. */
export async function deployModel(spec: ModelSpec, context: DeployContext): Promise<boolean> {
  const { registry, status, log } = context;
  if (!registry.active(spec.name)) registry.expect(spec.name);
  status.updateModel(spec.name, { status: 'loading', desiredVersion: spec.version, requestedTarget: spec.session.target, error: null });
  const started = performance.now();
  try {
    const located = await locateModel({ uri: spec.uri, sha256: spec.sha256 }, context.storeDir);
    const pkg = await readModelPackage(located.path, spec.settings);
    const model = await loadModelVersion({ name: spec.name, version: spec.version, sha256: located.sha256, pkg, session: spec.session, log });
    registry.activate(model);
    context.onSwap?.(spec.name);
    status.updateModel(spec.name, { status: 'active', version: spec.version, target: model.target, sha256: located.sha256 ?? null });
    log.info({ model: spec.name, version: spec.version, target: model.target, ms: Math.round(performance.now() - started) }, 'model version active');
    return true;
  } catch (error) {
    const code = isEdgeInferError(error) ? error.code : 'EI_INTERNAL';
    status.updateModel(spec.name, { status: 'failed', error: { code, message: messageOf(error) } });
    log.error({ model: spec.name, version: spec.version, code, err: error }, 'model version failed; the previous version, if any, keeps serving');
    return false;
  }
}
