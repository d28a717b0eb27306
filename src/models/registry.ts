/**
 * The models being served, by slot name, and the one active version of each.
 *
 * Frontends ask for "the active version of X" and hold a lease while they use it (Triton's model repository
 * habit). Activating a new version is one assignment, so every request sees either the old version or the new
 * one; the old one is released once its last lease is returned, so a swap drains instead of failing requests.
 * A slot may also hold a candidate version, which answers nobody: it is leased for shadow runs, and promoting it
 * is the same swap.
 */
import { EdgeInferError } from '../errors.js';
import type { ModelVersion } from '../engine/loaded-version.js';
import { Admission, defaultAdmissionLimits, type AdmissionCounts, type AdmissionLimits } from './admission.js';
import { tapped, type Tap } from './tap.js';

interface Held {
  readonly model: ModelVersion;
  leases: number;
  retired: boolean;
}

export interface Lease {
  readonly model: ModelVersion;
  release(): void;
}

export type ReleaseErrorHandler = (model: ModelVersion, error: unknown) => void;

/** Who asked for a scoring call (the status page's recent results name it). */
export type ScoreSource = 'rest' | 'oip' | 'message' | 'method' | 'camera';

/** How one call to `use` ended: what its work returned, or why it failed (refused, not found, or thrown by the work). */
export type UseOutcome = { source: ScoreSource; name: string | undefined; model: ModelVersion | undefined; ms: number } & ({ value: unknown } | { error: unknown });

export class ModelRegistry {
  readonly #active = new Map<string, Held>();
  readonly #candidates = new Map<string, Held>();
  readonly #taps: Tap[] = [];
  /** When each slot's last call ended (performance.now()). */
  readonly #lastEnded = new Map<string, number>();
  /** Slots that are being loaded: they answer "not ready" (503) rather than "not found" (404). */
  readonly #expected = new Set<string>();
  /** One admission per slot that is served, kept across swaps (the bound is the slot's, whatever its version). */
  readonly #admissions = new Map<string, Admission>();
  readonly #limits: AdmissionLimits;
  readonly #onReleaseError: ReleaseErrorHandler;
  readonly #onUsed: ((outcome: UseOutcome) => void) | undefined;

  /** @param onUsed told of every scoring call as it ends (`model` is the version that ran, if it ran). */
  constructor(onReleaseError: ReleaseErrorHandler, limits: AdmissionLimits = defaultAdmissionLimits(), onUsed?: (outcome: UseOutcome) => void) {
    this.#onReleaseError = onReleaseError;
    this.#limits = limits;
    this.#onUsed = onUsed;
  }

  /** Declares a slot whose first version is on its way. */
  expect(name: string): void {
    this.#expected.add(name);
  }

  /**
   * Makes `model` the version that answers for its slot; the previous one drains and is released.
   * @param maxBatch for a slot that batches: each in-flight place may hold a whole batch, so that a batch can
   * fill while another runs (requests still waiting at the admission could not join one).
   */
  activate(model: ModelVersion, maxBatch = 1): void {
    this.#install({ model, leases: 0, retired: false }, maxBatch);
  }

  #install(held: Held, maxBatch: number): void {
    const { model } = held;
    const previous = this.#active.get(model.name);
    this.#active.set(model.name, held);
    const limits = { ...this.#limits, inFlight: this.#limits.inFlight * maxBatch };
    const admission = this.#admissions.get(model.name);
    if (admission) admission.setLimits(limits);
    else this.#admissions.set(model.name, new Admission(limits));
    if (previous) this.#retire(previous);
  }

  /** Stops serving a slot; its version (and candidate) drains and is released. */
  remove(name: string): void {
    this.#expected.delete(name);
    this.#admissions.delete(name);
    this.#lastEnded.delete(name);
    this.removeCandidate(name);
    const held = this.#active.get(name);
    if (!held) return;
    this.#active.delete(name);
    this.#retire(held);
  }

  /** Holds `model` as its slot's candidate; a previous candidate drains and is released. */
  setCandidate(model: ModelVersion): void {
    const previous = this.#candidates.get(model.name);
    this.#candidates.set(model.name, { model, leases: 0, retired: false });
    if (previous) this.#retire(previous);
  }

  /** Drops a slot's candidate, if it has one; it drains and is released. */
  removeCandidate(name: string): void {
    const held = this.#candidates.get(name);
    if (!held) return;
    this.#candidates.delete(name);
    this.#retire(held);
  }

  candidate(name: string): ModelVersion | undefined {
    return this.#candidates.get(name)?.model;
  }

  /** A lease on the slot's candidate, if it has one (a shadow run holds it while the candidate works). */
  acquireCandidate(name: string): Lease | undefined {
    const held = this.#candidates.get(name);
    return held && this.#lease(held);
  }

  /**
   * Makes the slot's candidate its active version, with the leases it holds: the same swap as `activate`, with
   * no load. Throws EI_NO_CANDIDATE when the slot has none.
   */
  promote(name: string, maxBatch = 1): ModelVersion {
    const held = this.#candidates.get(name);
    if (!held) throw new EdgeInferError('EI_NO_CANDIDATE', [name]);
    this.#candidates.delete(name);
    // Its own holding, leases and all: shadow runs still using it keep them on what is now the active version.
    this.#install(held, maxBatch);
    return held.model;
  }

  /** Adds work that follows every successful call on the slots it wants (shadow runs, data collection). */
  addTap(tap: Tap): void {
    this.#taps.push(tap);
  }

  /** The slots with an active version. */
  names(): string[] {
    return [...this.#active.keys()];
  }

  /** Every slot: active, and expected but not active yet. */
  slots(): string[] {
    return [...new Set([...this.#active.keys(), ...this.#expected])];
  }

  /** Whether `name` is one of slots(), without building the list (asked once per request). */
  hasSlot(name: string): boolean {
    return this.#active.has(name) || this.#expected.has(name);
  }

  active(name: string): ModelVersion | undefined {
    return this.#active.get(name)?.model;
  }

  /**
   * A lease on the active version of `name`; `version`, when given, must be the active one. An undefined name
   * is the default model where none is set (no slot is served): not found, with the slots there are.
   */
  acquire(name: string | undefined, version?: string): Lease {
    return this.#lease(this.#served(name, version));
  }

  #lease(held: Held): Lease {
    held.leases++;
    let returned = false;
    return {
      model: held.model,
      release: () => {
        if (returned) return;
        returned = true;
        held.leases--;
        if (held.retired && held.leases === 0) this.#release(held);
      },
    };
  }

  /**
   * Runs `work` on the active version of `name` under a lease, once the slot's admission lets it in (refused
   * at once past the bound; never run if `signal` aborts while it waits). The lease is taken when the turn
   * comes, so a request that waited through a swap runs on the new version, and the old one drains. `source`
   * says who asked: the outcome goes to `onUsed` with it. `nextUp`: told when the request's turn is near
   * (Admission.run).
   */
  async use<T>(
    source: ScoreSource,
    name: string | undefined,
    version: string | undefined,
    work: (model: ModelVersion) => Promise<T>,
    signal?: AbortSignal,
    nextUp?: () => void,
  ): Promise<T> {
    const started = performance.now();
    let ran: ModelVersion | undefined;
    const ended = (outcome: { value: T } | { error: unknown }) => this.#onUsed?.({ source, name, model: ran, ms: performance.now() - started, ...outcome });
    try {
      this.#served(name, version);
      const value = await this.#admissions.get(name!)!.run(async () => {
        const lease = this.acquire(name, version);
        ran = lease.model;
        const taps = this.#tapsFor(name!);
        try {
          return await work(taps ? tapped(lease.model, source, taps) : lease.model);
        } finally {
          lease.release();
          // Only a watched slot's quiet is asked for (shadow runs): the others pay nothing for it.
          if (taps) this.#lastEnded.set(name!, performance.now());
        }
      }, signal, nextUp);
      ended({ value });
      return value;
    } catch (error) {
      ended({ error });
      throw error;
    }
  }

  /** How long `name` has had no request running or waiting, in ms (0 while it has): shadow runs wait for quiet. */
  quietFor(name: string): number {
    const counts = this.#admissions.get(name)?.counts();
    if (counts && (counts.inFlight > 0 || counts.waiting > 0)) return 0;
    return performance.now() - (this.#lastEnded.get(name) ?? 0);
  }

  /** Throws EI_OVERLOADED when `name`'s admission has no place now (nothing for a slot not served: `use` says why). */
  refuseIfFull(name: string | undefined): void {
    if (name !== undefined) this.#admissions.get(name)?.refuseIfFull();
  }

  /** In flight, waiting, shed and abandoned, per slot that is served (so metrics name only slots that exist). */
  admissionCounts(): Map<string, AdmissionCounts> {
    return new Map([...this.#admissions].map(([name, admission]) => [name, admission.counts()]));
  }

  /** The taps that want `name`; undefined (no allocation) when none does, which is the usual case. */
  #tapsFor(name: string): Tap[] | undefined {
    let wanted: Tap[] | undefined;
    for (const tap of this.#taps) if (tap.wants(name)) (wanted ??= []).push(tap);
    return wanted;
  }

  /** Releases every version (shutdown); versions still leased go when their last lease returns. */
  close(): void {
    for (const name of this.slots()) this.remove(name);
  }

  /** The active version of `name`, or the error that says why there is none to use. */
  #served(name: string | undefined, version: string | undefined): Held {
    if (name === undefined) throw new EdgeInferError('EI_MODEL_NOT_FOUND', ['(default)', this.slots().join(', ') || '(none)']);
    const held = this.#active.get(name);
    if (!held) {
      if (this.#expected.has(name)) throw new EdgeInferError('EI_MODEL_NOT_READY', [name, 'not loaded yet']);
      throw new EdgeInferError('EI_MODEL_NOT_FOUND', [name, this.names().join(', ') || '(none)']);
    }
    if (version !== undefined && version !== held.model.version) {
      throw new EdgeInferError('EI_VERSION_NOT_FOUND', [name, version, held.model.version]);
    }
    return held;
  }

  #retire(held: Held): void {
    held.retired = true;
    if (held.leases === 0) this.#release(held);
  }

  #release(held: Held): void {
    held.model.release().catch((error: unknown) => this.#onReleaseError(held.model, error));
  }
}
