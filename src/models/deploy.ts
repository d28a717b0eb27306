/**
 * Makes one model slot serve one version: locate (download, verify, unpack), read the package, load, warm up,
 * switch atomically, record it in the store. Status follows each step; on failure the version already serving
 * keeps serving and the slot's status says why. The reconciler decides when; this file does one step.
 */
import type { Logger } from 'pino';
import type { AutoPromote } from '../config/desired-state.js';
import { isEdgeInferError, messageOf } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { ScriptLimits } from '../engine/entry-script.js';
import { loadModelVersion, type ModelVersion } from '../engine/loaded-version.js';
import type { Placement, Running } from '../engine/target.js';
import type { CandidateStatus, ModelState, Promotion, StatusStore } from '../status/store.js';
import type { DownloadOptions } from './download.js';
import { locateModel } from './locate.js';
import type { ModelSettings } from './manifest.js';
import { readModelPackage } from './package.js';
import type { ModelRegistry } from './registry.js';
import type { Shadow } from './shadow.js';
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
  /** A version to shadow beside this one. */
  candidate?: CandidateSpec;
}

/** How a candidate is shadowed: the share of inputs it also runs, the raw tolerance, the rule that promotes it. */
export interface ShadowSettings {
  share: number;
  tolerance: number;
  autoPromote?: AutoPromote;
}

export interface CandidateSpec extends ModelSpec {
  shadow: ShadowSettings;
}

export interface DeployContext {
  registry: ModelRegistry;
  status: StatusStore;
  store: ModelStore;
  log: Logger;
  /** Places each version on its target. */
  engine: Engine;
  /** Runs candidates on a share of the active versions' inputs (a context that deploys no candidate goes without). */
  shadow?: Shadow;
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

/** What a deploy step says of its version as it goes: the slot's own status, or its candidate's. */
type StepReport = (patch: { status?: ModelState; progress?: number | null; error?: { code: string; message: string } | null }) => void;

/** A version loaded and ready to switch in, with where its content lies and where it runs. */
interface Prepared {
  model: ModelVersion;
  sha256: string | undefined;
  path: string;
  running: Running;
}

/**
 * Place, locate (download, verify, unpack) and load `spec`, reporting each step. Throws what stopped it, after
 * reporting nothing of the failure (the caller says where it goes).
 * @param onMoved told when the loaded version moves between targets by itself (a remote target's breaker).
 */
async function prepare(spec: ModelSpec, context: DeployContext, report: StepReport, onMoved: (model: ModelVersion, running: Running) => void, downloads: { started: boolean }): Promise<Prepared> {
  const { store } = context;
  let model: ModelVersion | undefined;
  // Placed before anything is downloaded: a target that is missing with fallback "none" fails at once.
  const target = await context.engine.place(spec.name, spec, (running) => model && onMoved(model, running));
  const located = await store.pinned(spec.sha256?.toLowerCase(), () =>
    locateModel({ uri: spec.uri, sha256: spec.sha256 }, store.dir, {
      download: {
        ...context.download,
        ...(spec.size ? { limit: { bytes: spec.size, from: 'the slot\'s "size"' } } : {}),
        onProgress: (progress) => report({ status: 'downloading', progress }),
      },
      ...(context.maxUnpackedBytes ? { maxUnpackedBytes: context.maxUnpackedBytes } : {}),
      onDownload: () => {
        downloads.started = true;
        report({ status: 'downloading', progress: 0 });
      },
      onVerify: () => {
        if (downloads.started) context.onDownloaded?.(true);
        downloads.started = false;
        report({ status: 'verifying', progress: null });
      },
    }),
  );
  report({ status: 'loading' });
  model = await store.pinned(located.sha256, async () => {
    const pkg = await readModelPackage(located.path, spec.settings);
    return loadModelVersion({ name: spec.name, version: spec.version, sha256: located.sha256, pkg, target, log: context.log, ...(context.scriptLimits ? { scriptLimits: context.scriptLimits } : {}), ...(context.maxBody ? { maxBody: context.maxBody } : {}) });
  });
  return { model, sha256: located.sha256, path: located.path, running: target.running };
}

/** The failure of a step, reported; the store's unreferenced content goes (a cut download's .partial stays to resume). */
async function failed(spec: ModelSpec, context: DeployContext, report: StepReport, error: unknown, downloads: { started: boolean }, what: string): Promise<void> {
  if (downloads.started) context.onDownloaded?.(false);
  const code = isEdgeInferError(error) ? error.code : 'EI_INTERNAL';
  report({ status: 'failed', progress: null, error: { code, message: messageOf(error) } });
  context.log.error({ model: spec.name, version: spec.version, code, err: error }, what);
  await context.store.collect().catch((collectError: unknown) => context.log.warn({ err: collectError }, 'unreferenced store content could not be removed'));
}

/** Never throws: the outcome is in the status store. Returns whether the version became active. */
export async function deployModel(spec: ModelSpec, context: DeployContext): Promise<boolean> {
  const { registry, status, log } = context;
  const requestedTarget = spec.target ?? 'cpu';
  if (!registry.active(spec.name)) registry.expect(spec.name);
  status.updateModel(spec.name, { status: 'pending', desiredVersion: spec.version, requestedTarget, error: null, progress: null });
  const started = performance.now();
  const downloads = { started: false };
  const report: StepReport = (patch) => status.updateModel(spec.name, patch);
  try {
    const prepared = await prepare(spec, context, report, (model, running) => movedTarget(spec, context, model, running), downloads);
    registry.activate(prepared.model, spec.batching?.maxBatch);
    await activated(spec, context, prepared, false);
    log.info({ model: spec.name, version: spec.version, target: prepared.running.target, ms: Math.round(performance.now() - started) }, 'model version active');
    return true;
  } catch (error) {
    await failed(spec, context, report, error, downloads, 'model version failed; the previous version, if any, keeps serving');
    return false;
  }
}

/**
 * Loads `spec` as the slot's candidate: shadowed beside the active version, answering nobody. Never throws;
 * on failure a candidate already loaded keeps being shadowed, and the status says why.
 */
export async function deployCandidate(spec: CandidateSpec, context: DeployContext): Promise<boolean> {
  const { registry, status, store, log } = context;
  const report: StepReport = (patch) => status.updateCandidate(spec.name, { version: spec.version, ...patch });
  status.updateCandidate(spec.name, { version: spec.version, status: 'pending', error: null, progress: null, shadowShare: spec.shadow.share, shadow: null, autoPromote: waitingFor(spec) });
  const downloads = { started: false };
  try {
    const prepared = await prepare(spec, context, report, (_model, running) => status.updateCandidate(spec.name, { version: spec.version, target: running.target }), downloads);
    registry.setCandidate(prepared.model);
    context.shadow?.start(spec.name, prepared.model, spec.shadow);
    status.updateCandidate(spec.name, { version: spec.version, status: 'active', target: prepared.running.target });
    log.info({ model: spec.name, candidate: spec.version, share: spec.shadow.share }, 'candidate version shadowed');
    await store
      .recordCandidate(spec.name, { ...storedFields(spec), version: spec.version, path: prepared.path, ...(prepared.sha256 ? { sha256: prepared.sha256 } : {}) })
      .catch((error: unknown) => log.warn({ model: spec.name, err: error }, 'the store state could not be saved'));
    return true;
  } catch (error) {
    await failed(spec, context, report, error, downloads, 'candidate version failed; the active version is not affected');
    return false;
  }
}

/**
 * Makes the slot's loaded candidate its active version: the registry's swap, with no download or load. The
 * store records it as promoted, so that a restart serves it while the desired state still names it as the
 * candidate. Throws EI_NO_CANDIDATE when there is none.
 */
export async function promoteCandidate(spec: CandidateSpec, context: DeployContext, promotion: Omit<Promotion, 'at' | 'from'>): Promise<void> {
  const { registry, status, log } = context;
  const from = registry.active(spec.name)?.version ?? null;
  const model = registry.promote(spec.name, spec.batching?.maxBatch);
  context.shadow?.stop(spec.name);
  status.updateCandidate(spec.name, null);
  status.updateModel(spec.name, { requestedTarget: spec.target ?? 'cpu', promotion: { ...promotion, from, at: new Date().toISOString() } });
  const path = context.store.candidate(spec.name)?.path ?? spec.uri;
  await activated(spec, context, { model, sha256: model.sha256, path, running: { target: model.target, reason: null } }, true);
  log.info({ model: spec.name, version: spec.version, from, by: promotion.by }, 'candidate promoted');
}

/** A candidate's rule, waiting for its samples (null: it has none). */
export function waitingFor(candidate: CandidateSpec): CandidateStatus['autoPromote'] {
  const rule = candidate.shadow.autoPromote;
  return rule ? { rule, verdict: 'waiting', reason: null } : null;
}

/** The tail of every switch: metrics, the slot's status, the store's record (a promoted candidate marked so). */
async function activated(spec: ModelSpec, context: DeployContext, prepared: Prepared, promoted: boolean): Promise<void> {
  const { status, store, log } = context;
  const { running } = prepared;
  context.onSwap?.(spec.name);
  status.updateModel(spec.name, {
    status: 'active',
    version: spec.version,
    desiredVersion: spec.version,
    target: running.target,
    targetReason: running.reason,
    sha256: prepared.sha256 ?? null,
    ...(promoted ? {} : { promotion: null }),
  });
  if (running.reason) log.warn({ model: spec.name, requestedTarget: spec.target ?? 'cpu', target: running.target, reason: running.reason }, 'model runs on a fallback target');
  // A promoted version loaded again (a restart's restore, a rollback to it) is still the promoted one.
  const recorded = store.active(spec.name);
  const stillPromoted = promoted || (recorded?.promoted === true && recorded.version === spec.version);
  const stored: StoredVersion = { ...storedFields(spec), version: spec.version, path: prepared.path, ...(prepared.sha256 ? { sha256: prepared.sha256 } : {}), ...(stillPromoted ? { promoted: true as const } : {}) };
  // The version serves either way; a state file that cannot be written only costs the offline restart.
  await store.recordActive(spec.name, stored).catch((error: unknown) => log.warn({ model: spec.name, err: error }, 'the store state could not be saved; a restart will not find this version'));
}

/** The active version moved between targets by itself: said while it is still the one serving. */
function movedTarget(spec: ModelSpec, context: DeployContext, model: ModelVersion, running: Running): void {
  if (context.registry.active(spec.name) !== model) return;
  context.status.updateModel(spec.name, { target: running.target, targetReason: running.reason });
  context.log.warn({ model: spec.name, version: spec.version, target: running.target, reason: running.reason }, 'model moved to another target');
}

/** What the store keeps of a spec besides where its content lies. */
function storedFields(spec: ModelSpec): Omit<StoredVersion, 'version' | 'path' | 'sha256'> {
  const { settings, target, fallback, threads, gpu, accelerator, batching } = spec;
  return Object.fromEntries(Object.entries({ settings, target, fallback, threads, gpu, accelerator, batching }).filter(([, v]) => v !== undefined));
}

