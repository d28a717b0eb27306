/**
 * Where models run: probes each target (at start, and again whenever a slot asks for it) and places a slot on
 * the target it asks for, or on the CPU with the reason when that target is missing and the slot allows it.
 * What it finds goes to `runtime.targets` through `onProbe`; nobody else keeps a copy.
 */
import { EdgeInferError } from '../errors.js';
import { batchingTarget, type BatchObserver } from './batcher.js';
import { cpuTarget, gpuTarget, probeCpu, probeGpu } from './local-targets.js';
import type { ExecutionProvider, LocalSessionSettings } from './onnx-session.js';
import { remoteTarget } from './remote-target.js';
import { SharedSessions } from './shared-sessions.js';
import { NOT_CONFIGURED, type Placement, type Running, type Target, type TargetName, type TargetProbe } from './target.js';

export interface EngineOptions {
  onProbe: (target: TargetName, probe: TargetProbe) => void;
  /** Told of every batch a batching slot runs (metrics). */
  onBatch?: BatchObserver;
  /** Whether ONNX Runtime's threads spin-wait between runs, in every session made here (the module's `--spin-wait`). */
  spinWait?: boolean;
}

export class Engine {
  readonly #onProbe: EngineOptions['onProbe'];
  readonly #onBatch: BatchObserver;
  readonly #spinWait: boolean;
  /** Local sessions, shared by versions that load the same file the same way. */
  readonly #sessions = new SharedSessions();

  constructor(options: EngineOptions) {
    this.#onProbe = options.onProbe;
    this.#onBatch = options.onBatch ?? (() => undefined);
    this.#spinWait = options.spinWait ?? false;
  }

  /** The start-up probes: the CPU and the GPU for real; an accelerator only once a slot names one. */
  async probe(): Promise<void> {
    this.#onProbe('cpu', await probeCpu());
    this.#onProbe('gpu', (await probeGpu()).probe);
    this.#onProbe('fpga', NOT_CONFIGURED);
  }

  /**
   * The target a slot's version loads on. Throws EI_TARGET_UNAVAILABLE when the target is missing and the
   * fallback is `none`.
   * @param onRunning told when a loaded model moves between targets by itself (a remote target's breaker).
   */
  async place(slot: string, placement: Placement, onRunning: (running: Running) => void): Promise<Target> {
    const target = await this.#target(slot, placement, onRunning);
    return placement.batching ? batchingTarget(slot, target, placement.batching, this.#onBatch) : target;
  }

  async #target(slot: string, placement: Placement, onRunning: (running: Running) => void): Promise<Target> {
    const requested = placement.target ?? 'cpu';
    const session: LocalSessionSettings = { ...(placement.threads !== undefined ? { threads: placement.threads } : {}), spinWait: this.#spinWait };
    const onCpu = (reason: string | null) => this.#sessions.share(cpuTarget(session, reason), `cpu ${placement.threads ?? 0}`);
    const fallBack = (reason: string): Target => {
      if ((placement.fallback ?? 'cpu') === 'none') throw new EdgeInferError('EI_TARGET_UNAVAILABLE', [requested, slot, reason]);
      return onCpu(reason);
    };
    if (requested === 'cpu') return onCpu(null);
    if (requested === 'gpu') {
      const { probe, providers } = await probeGpu(placement.gpu);
      this.#onProbe('gpu', probe);
      return probe.status === 'available' ? this.#sessions.share(gpuTarget(providers, session), gpuSessionPlace(providers, placement)) : fallBack(probe.reason ?? 'not configured');
    }
    const { accelerator } = placement;
    if (!accelerator) return fallBack('the slot names no accelerator: set its "accelerator": {"url": ...}');
    return remoteTarget({ slot, placement: { ...placement, accelerator }, session, onRunning, onProbe: (probe) => this.#onProbe('fpga', probe) });
  }
}

/**
 * Which GPU slots share a session (SharedSessions' place): those with the same providers and threads, and the
 * same batching. The CUDA provider spends up to a second on every run whose input shape differs from the run
 * before (README, "Input shapes on the GPU"): a batching slot padded to 32 rows and an unbatched one of the same
 * file, on one session, would pay it on nearly every run. On the CPU a change of shape costs nothing, and slots
 * share whatever their batching.
 */
export function gpuSessionPlace(providers: ExecutionProvider[], placement: Pick<Placement, 'threads' | 'batching'>): string {
  // Sorted, so that the same settings written in another order still share.
  const batching = placement.batching ? Object.entries(placement.batching).sort(([a], [b]) => a.localeCompare(b)) : null;
  return JSON.stringify(['gpu', providers, placement.threads ?? 0, batching]);
}
