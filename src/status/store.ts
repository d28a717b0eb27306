/**
 * The one place that knows what runs: the lifecycle, cameras and runtime write here; the reported
 * properties, `GET /status`, `getStatus` and metrics read from here. Nobody else keeps a second copy.
 */
import { EventEmitter } from 'node:events';
import type { AutoPromote } from '../config/desired-state.js';
import type { TargetProbe } from '../engine/target.js';
import type { ShadowSnapshot } from '../models/shadow-stats.js';

/** Where a model slot stands (contract section 5). `version` is always the version answering requests. */
export type ModelState = 'pending' | 'downloading' | 'verifying' | 'loading' | 'active' | 'failed';

export interface ModelStatus {
  status: ModelState;
  /** The version answering requests, or null while none does. */
  version: string | null;
  desiredVersion: string | null;
  target: string | null;
  requestedTarget: string | null;
  /** Why `target` is not `requestedTarget` (a fallback), or why the accelerator's breaker is open; null otherwise. */
  targetReason: string | null;
  sha256: string | null;
  /** When `status` last changed. */
  since: string;
  /** Download progress from 0 to 1 while `status` is downloading, in steps of a tenth; null otherwise. */
  progress: number | null;
  /** How long `version` took to load (read, place on its target, warm up), in ms: from `loading` to `active`. */
  loadMs: number | null;
  error: { code: string; message: string } | null;
  /** The version shadowed beside `version`, if the slot names one. */
  candidate: CandidateStatus | null;
  /** How `version` became active when a candidate was promoted to it; null when the desired state named it. */
  promotion: Promotion | null;
}

/** A candidate version (README "Candidate versions"): it loads like any version, then `active` means shadowing. */
export interface CandidateStatus {
  version: string;
  status: ModelState;
  /** When `status` last changed. */
  since: string;
  progress: number | null;
  target: string | null;
  error: { code: string; message: string } | null;
  shadowShare: number;
  /** The candidate against the active version on the same inputs, since it was loaded; null until then. */
  shadow: ShadowSnapshot | null;
  /** The slot's rule, and where it stands: waiting for samples, or refused with the reason. */
  autoPromote: { rule: AutoPromote; verdict: 'waiting' | 'refused'; reason: string | null } | null;
}

/** Who promoted a candidate: a person (direct method, REST or CLI; the twin's `promote` flag) or the slot's rule. */
export type PromotedBy = 'method' | 'rest' | 'twin' | 'autoPromote';

export interface Promotion {
  from: string | null;
  by: PromotedBy;
  /** The rule's verdict, for a promotion by rule. */
  reason: string | null;
  at: string;
}

export type CameraState = 'connecting' | 'streaming' | 'backoff' | 'disabled' | 'failed';

/** Where a camera stands (contract section 5). `fps`, `lastFrameAt` and `dropped` are refreshed every few seconds, not per frame. */
export interface CameraStatus {
  status: CameraState;
  /** Frames scored per second over the last refresh period. */
  fps: number;
  lastFrameAt: string | null;
  /** Frames replaced by a newer one before they were scored, since the camera was (re)configured. */
  dropped: number;
  error: { code: string; message: string } | null;
}

/** The link to IoT Hub through edgeHub: connecting (a session opening), connected, or backoff (waiting to try again). */
export type HubState = 'connecting' | 'connected' | 'backoff';

export interface HubStatus {
  state: HubState;
  /** When `state` last changed. */
  since: string;
  /** When the whole twin was last read (on connect, and by the periodic read). */
  lastTwinSync: string | null;
  /** The `$version` of the desired properties applied last. */
  desiredVersion: number | null;
  /** Sessions that ended and were replaced by a new one since the module started. */
  reconnects: number;
  /** Why the last session ended. */
  lastLoss: { cause: string; at: string } | null;
  /** Output messages (answers, camera results) waiting to be sent until edgeHub is back. */
  waitingOutputs: number;
}

/** Data collection (README "Data collection"); counters since the module started. The SAS URL is never here. */
export interface CollectStatus {
  /** `off`: the desired state has no `collect` section (files already collected stay, and upload once it has). */
  state: 'off' | 'collecting';
  /** `none`: no upload configured; `backoff`: the last upload failed and is retried. */
  upload: 'none' | 'idle' | 'uploading' | 'backoff';
  /** Records written to the folder. */
  kept: number;
  /** Calls chosen but not kept: past `maxPerHour`, or the write queue was full. */
  skippedHourly: number;
  droppedQueueFull: number;
  /** Records that could not be written (disk full or read-only). */
  failed: number;
  /** Whole files in the folder waiting for upload (index files count once closed). */
  pendingFiles: number;
  pendingBytes: number;
  uploadedFiles: number;
  uploadedBytes: number;
  /** Files deleted, oldest first, to keep the folder under `maxDiskMB`. */
  deletedForCap: number;
  lastError: { code: string; message: string; at: string } | null;
}

export interface RuntimeStatus {
  version: string;
  onnxruntime: string;
  startedAt: string;
  /** Each target's last probe: `available` with details, `unavailable` with the reason, or `not configured`. */
  targets: Record<string, TargetProbe>;
  /** Only when the module takes its desired state from the twin. */
  hub?: HubStatus;
  /** Only once the desired state has asked for data collection. */
  collect?: CollectStatus;
}

export interface RequestCounters {
  ok: number;
  failed: number;
}

export interface StatusSnapshot {
  runtime: RuntimeStatus;
  /** Where the desired state comes from, and why it cannot be used when it cannot. */
  desired: { source: string; error: string | null };
  models: Record<string, ModelStatus>;
  cameras: Record<string, CameraStatus>;
  counters: { requests: Record<string, RequestCounters> };
}

export class StatusStore extends EventEmitter<{ change: []; 'model-removed': [name: string] }> {
  readonly #runtime: RuntimeStatus;
  readonly #models = new Map<string, ModelStatus>();
  /** When each slot last entered `loading` (monotonic clock), to time the load that ends in `active`. */
  readonly #loadingSince = new Map<string, number>();
  readonly #cameras = new Map<string, CameraStatus>();
  readonly #requests = new Map<string, RequestCounters>();
  #desired: StatusSnapshot['desired'] = { source: 'none', error: null };

  constructor(runtime: RuntimeStatus) {
    super();
    this.#runtime = runtime;
  }

  /** Merges `patch` into a model's status; `since` moves only when `status` changes. */
  updateModel(name: string, patch: Partial<Omit<ModelStatus, 'since' | 'loadMs'>>): void {
    const current = this.#models.get(name);
    // A load is timed where the states change: from entering `loading` to entering `active` (deploy.ts's steps).
    if (patch.status === 'loading' && current?.status !== 'loading') this.#loadingSince.set(name, performance.now());
    const loadingSince = current?.status === 'loading' && patch.status === 'active' ? this.#loadingSince.get(name) : undefined;
    const next: ModelStatus = {
      status: 'pending',
      version: null,
      desiredVersion: null,
      target: null,
      requestedTarget: null,
      targetReason: null,
      sha256: null,
      error: null,
      progress: null,
      loadMs: null,
      candidate: null,
      promotion: null,
      ...current,
      ...patch,
      ...(loadingSince !== undefined ? { loadMs: Math.round(performance.now() - loadingSince) } : {}),
      since: current && (patch.status === undefined || patch.status === current.status) ? current.since : new Date().toISOString(),
    };
    this.#models.set(name, next);
    this.emit('change');
  }

  /** Merges `patch` into a model's candidate status (null: the slot has no candidate); `since` as in updateModel. */
  updateCandidate(name: string, patch: (Partial<Omit<CandidateStatus, 'since'>> & Pick<CandidateStatus, 'version'>) | null): void {
    const current = this.#models.get(name)?.candidate ?? null;
    if (patch === null) {
      if (current) this.updateModel(name, { candidate: null });
      return;
    }
    const same = current?.version === patch.version ? current : null;
    const next: CandidateStatus = {
      status: 'pending',
      progress: null,
      target: null,
      error: null,
      shadowShare: 0,
      shadow: null,
      autoPromote: null,
      ...same,
      ...patch,
      since: same && (patch.status === undefined || patch.status === same.status) ? same.since : new Date().toISOString(),
    };
    this.updateModel(name, { candidate: next });
  }

  /** A target's probe result (the engine probes at start and whenever a slot asks for the target). */
  setTarget(name: string, probe: TargetProbe): void {
    this.#runtime.targets[name] = probe;
    this.emit('change');
  }

  setDesired(source: string, error: string | null): void {
    this.#desired = { source, error };
    this.emit('change');
  }

  /** Merges `patch` into the hub link's status; `since` moves only when `state` changes. */
  updateHub(patch: Partial<Omit<HubStatus, 'since'>>): void {
    const current = this.#runtime.hub;
    const state = patch.state ?? current?.state ?? 'connecting';
    this.#runtime.hub = {
      lastTwinSync: null,
      desiredVersion: null,
      reconnects: 0,
      lastLoss: null,
      waitingOutputs: 0,
      ...current,
      ...patch,
      state,
      since: current && state === current.state ? current.since : new Date().toISOString(),
    };
    this.emit('change');
  }

  /** Data collection's figures; the collector writes them at most once a second. */
  setCollect(collect: CollectStatus): void {
    this.#runtime.collect = { ...collect };
    this.emit('change');
  }

  /** Forgets a removed slot, its request counters too; `model-removed` tells the metrics to drop its series. */
  removeModel(name: string): void {
    this.#loadingSince.delete(name);
    this.#requests.delete(name);
    if (this.#models.delete(name)) this.emit('change');
    this.emit('model-removed', name);
  }

  /** Merges `patch` into a camera's status. */
  updateCamera(id: string, patch: Partial<CameraStatus>): void {
    const current = this.#cameras.get(id) ?? { status: 'connecting', fps: 0, lastFrameAt: null, dropped: 0, error: null };
    this.#cameras.set(id, { ...current, ...patch });
    this.emit('change');
  }

  removeCamera(id: string): void {
    if (this.#cameras.delete(id)) this.emit('change');
  }

  camera(id: string): CameraStatus | undefined {
    return this.#cameras.get(id);
  }

  model(name: string): ModelStatus | undefined {
    return this.#models.get(name);
  }

  /** Counted on the hot path: a map lookup and an increment, no event. */
  countRequest(model: string, ok: boolean): void {
    let counters = this.#requests.get(model);
    if (!counters) this.#requests.set(model, (counters = { ok: 0, failed: 0 }));
    if (ok) counters.ok++;
    else counters.failed++;
  }

  snapshot(): StatusSnapshot {
    return {
      runtime: structuredClone(this.#runtime),
      desired: { ...this.#desired },
      models: Object.fromEntries([...this.#models].map(([name, status]) => [name, { ...status }])),
      cameras: Object.fromEntries([...this.#cameras].map(([id, status]) => [id, { ...status }])),
      counters: { requests: Object.fromEntries([...this.#requests].map(([name, c]) => [name, { ...c }])) },
    };
  }
}
