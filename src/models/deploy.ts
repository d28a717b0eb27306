/**
 * Makes one model slot serve one version: locate (download, verify, unpack), read the package, load, warm up,
 * switch atomically, record it in the store. Status follows each step; on failure the version already serving
 * keeps serving and the slot's status says why. The reconciler decides when; this file does one step.
 */
import type { Logger } from 'pino';
import { isEdgeInferError, messageOf } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { ScriptLimits } from '../engine/entry-script.js';
import { loadModelVersion, type ModelVersion } from '../engine/loaded-version.js';
import type { Placement } from '../engine/target.js';
import type { StatusStore } from '../status/store.js';
import type { DownloadOptions } from './download.js';
import { locateModel } from './locate.js';
import type { ModelSettings } from './manifest.js';
import { readModelPackage } from './package.js';
import type { ModelRegistry } from './registry.js';
import type { ModelStore, StoredVersion } from './store.js';

/** A version to serve, and where the slot asks it to run (target, fallback, threads, gpu, accelerator). */
export interface ModelSpec extends Placement {
  name: string;
  version: string;
  uri: string;
  sha256?: string;
  /** The content's size in bytes, when the slot names it: the download's cap. */
  size?: number;
  /** Inline settings; they override the package's edge-infer.json. */
  settings?: ModelSettings;
}

export interface DeployContext {
  registry: ModelRegistry;
  status: StatusStore;
  store: ModelStore;
  log: Logger;
  /** Places each version on its target. */
  engine: Engine;
  download?: DownloadOptions;
  /** Called after each successful switch (metrics). */
  onSwap?: (name: string) => void;
  /** Called when a download ends, with whether its content was verified (metrics). */
  onDownloaded?: (ok: boolean) => void;
  /** The most bytes an archive may expand to (setting --max-unpacked; unpack.ts has the default). */
  maxUnpackedBytes?: number;
  /** Entry scripts' worker deadlines and heap (settings --script-*). */
  scriptLimits?: ScriptLimits;
  /** The request body limit (--max-body), from which each version's default tensor limits derive. */
  maxBody?: number;
}

/** Never throws: the outcome is in the status store. Returns whether the version became active. */
export async function deployModel(spec: ModelSpec, context: DeployContext): Promise<boolean> {
  const { registry, status, log, store } = context;
  const requestedTarget = spec.target ?? 'cpu';
  if (!registry.active(spec.name)) registry.expect(spec.name);
  status.updateModel(spec.name, { status: 'pending', desiredVersion: spec.version, requestedTarget, error: null, progress: null });
  const started = performance.now();
  let downloading = false;
  let model: ModelVersion | undefined;
  try {
    // Placed before anything is downloaded: a target that is missing with fallback "none" fails at once.
    const target = await context.engine.place(spec.name, spec, (running) => {
      if (!model || registry.active(spec.name) !== model) return;
      status.updateModel(spec.name, { target: running.target, targetReason: running.reason });
      log.warn({ model: spec.name, version: spec.version, target: running.target, reason: running.reason }, 'model moved to another target');
    });
    const located = await store.pinned(spec.sha256?.toLowerCase(), () =>
      locateModel({ uri: spec.uri, sha256: spec.sha256 }, store.dir, {
        download: {
          ...context.download,
          ...(spec.size ? { limit: { bytes: spec.size, from: 'the slot\'s "size"' } } : {}),
          onProgress: (progress) => status.updateModel(spec.name, { status: 'downloading', progress }),
        },
        ...(context.maxUnpackedBytes ? { maxUnpackedBytes: context.maxUnpackedBytes } : {}),
        onDownload: () => {
          downloading = true;
          status.updateModel(spec.name, { status: 'downloading', progress: 0 });
        },
        onVerify: () => {
          if (downloading) context.onDownloaded?.(true);
          downloading = false;
          status.updateModel(spec.name, { status: 'verifying', progress: null });
        },
      }),
    );
    status.updateModel(spec.name, { status: 'loading' });
    const loaded = await store.pinned(located.sha256, async () => {
      const pkg = await readModelPackage(located.path, spec.settings);
      return loadModelVersion({ name: spec.name, version: spec.version, sha256: located.sha256, pkg, target, log, ...(context.scriptLimits ? { scriptLimits: context.scriptLimits } : {}), ...(context.maxBody ? { maxBody: context.maxBody } : {}) });
    });
    model = loaded;
    registry.activate(loaded, spec.batching?.maxBatch);
    context.onSwap?.(spec.name);
    const { running } = target;
    status.updateModel(spec.name, { status: 'active', version: spec.version, target: running.target, targetReason: running.reason, sha256: located.sha256 ?? null });
    log.info({ model: spec.name, version: spec.version, target: running.target, ms: Math.round(performance.now() - started) }, 'model version active');
    if (running.reason) log.warn({ model: spec.name, requestedTarget, target: running.target, reason: running.reason }, 'model runs on a fallback target');
    // The version serves either way; a state file that cannot be written only costs the offline restart.
    await store
      .recordActive(spec.name, { ...storedFields(spec), version: spec.version, sha256: located.sha256, path: located.path })
      .catch((error: unknown) => log.warn({ model: spec.name, err: error }, 'the store state could not be saved; a restart will not find this version'));
    return true;
  } catch (error) {
    if (downloading) context.onDownloaded?.(false);
    const code = isEdgeInferError(error) ? error.code : 'EI_INTERNAL';
    status.updateModel(spec.name, { status: 'failed', progress: null, error: { code, message: messageOf(error) } });
    log.error({ model: spec.name, version: spec.version, code, err: error }, 'model version failed; the previous version, if any, keeps serving');
    // Its verified content is kept by nobody now; a cut download's .partial stays for the retry to resume.
    await store.collect().catch((collectError: unknown) => log.warn({ err: collectError }, 'unreferenced store content could not be removed'));
    return false;
  }
}

/** What the store keeps of a spec besides where its content lies. */
function storedFields(spec: ModelSpec): Omit<StoredVersion, 'version' | 'path' | 'sha256'> {
  const { settings, target, fallback, threads, gpu, accelerator, batching } = spec;
  return Object.fromEntries(Object.entries({ settings, target, fallback, threads, gpu, accelerator, batching }).filter(([, v]) => v !== undefined));
}

