/**
 * Compares the desired state with what runs and takes the steps between, like a Kubernetes controller:
 * each slot's deploys run one at a time, the newest desired spec wins over any still queued, and every step
 * is safe to repeat or to cut short (a restart mid-way serves the last good version from the store).
 */
import { checkSlot, type CandidateSlot, type DesiredState, type ModelSlot } from '../config/desired-state.js';
import { EdgeInferError, recordedError } from '../errors.js';
import type { PromotedBy } from '../status/store.js';
import { deployCandidate, deployModel, promoteCandidate, waitingFor, type CandidateSpec, type DeployContext, type ModelSpec } from './deploy.js';
import { LoadGate } from './load-gate.js';
import type { StoredVersion } from './store.js';

export class Reconciler {
  readonly #context: DeployContext;
  /** Served while the desired state names no model. */
  readonly #fallback: ModelSpec;
  /** What each slot was last asked to run, as a comparable key: a repeat of the same desired state is a no-op. */
  readonly #asked = new Map<string, string>();
  /** What each slot runs now, as the same key (its active version's part only). */
  readonly #running = new Map<string, string>();
  /** The candidate each slot shadows now (or is loading). */
  readonly #candidates = new Map<string, CandidateSpec>();
  readonly #queue = new Map<string, ModelSpec>();
  readonly #work = new Map<string, Promise<void>>();
  /** Slots deploy one at a time each, and only a few slots at once (a desired state may name hundreds). */
  readonly #loads = new LoadGate();
  #defaultModel: string | undefined;
  /** The slots the desired state names; undefined before the first one, when restored slots wait to be judged. */
  #wanted: Set<string> | undefined;
  /**
   * Slots the last desired state named but could not use: only the status knows them, so only the status forgets
   * them when a desired state drops them (else a twin of changing bad names would grow the status without bound).
   */
  #refused = new Set<string>();

  constructor(context: DeployContext, fallback: ModelSpec) {
    this.#context = context;
    this.#fallback = fallback;
  }

  /** The slot `/score` answers for: the desired `defaultModel`, else the first slot. */
  defaultModel(): string | undefined {
    return this.#defaultModel;
  }

  /**
   * Serves the versions the store last served, from disk, before any desired state arrives: after a restart
   * the module answers at once, with no network. Resolves when they are loaded (or failed).
   */
  async restore(): Promise<void> {
    const actives = Object.entries(this.#context.store.actives());
    if (actives.length > 0 && !this.#defaultModel) this.#defaultModel = actives[0]![0];
    await Promise.all(
      actives.map(([name, stored]) => {
        return this.#enqueue(fromStore(name, stored));
      }),
    );
  }

  /** Takes a whole desired state (a file, or a twin after merging its patches). */
  apply(desired: Pick<DesiredState, 'models' | 'defaultModel'>): void {
    const named = Object.entries(desired.models);
    const specs: Array<[string, ModelSpec | string]> = named.length > 0 ? named.map(([name, slot]) => [name, this.#specOf(name, slot)]) : [[this.#fallback.name, this.#fallback]];
    const wanted = new Set(specs.map(([name]) => name));
    this.#wanted = wanted;
    for (const name of this.#refused) if (!wanted.has(name)) this.#context.status.removeModel(name);
    this.#refused = new Set(specs.filter(([, spec]) => typeof spec === 'string').map(([name]) => name));
    for (const name of new Set([...this.#asked.keys(), ...this.#running.keys(), ...this.#context.registry.slots()])) {
      if (!wanted.has(name)) this.#remove(name);
    }
    for (const [name, spec] of specs) {
      if (typeof spec === 'string') {
        // The version serving (if any) goes on; the status says what to fix in the desired state.
        this.#asked.delete(name);
        const error = new EdgeInferError('EI_DESIRED_INVALID', [spec]);
        this.#context.status.updateModel(name, { status: 'failed', error: { code: error.code, message: error.message } });
        continue;
      }
      const key = `${specKey(spec)} ${spec.candidate ? candidateKey(spec.candidate) : ''}`;
      // The same desired state again is a no-op, except for a slot whose download failed: trying again is what
      // a re-read (a twin after reconnecting, a touched file) is for, once the network is back.
      if (this.#asked.get(name) === key && this.#context.status.model(name)?.error?.code !== 'EI_DOWNLOAD_FAILED') continue;
      this.#asked.set(name, key);
      const shadowing = this.#candidates.get(name);
      if (this.#isRunning(spec) && (shadowing && candidateKey(shadowing)) === (spec.candidate && candidateKey(spec.candidate))) continue;
      void this.#enqueue(spec);
    }
    this.#defaultModel = desired.defaultModel && wanted.has(desired.defaultModel) ? desired.defaultModel : specs[0]![0];
  }

  /**
   * Switches a slot to a version the store still holds: the rollback. Stays until the desired state changes.
   * Throws the error that kept it from becoming active.
   */
  async activate(name: string, version: string): Promise<void> {
    const stored = this.#context.store.versions(name);
    const found = stored.find((v) => v.version === version);
    if (!found) throw new EdgeInferError('EI_VERSION_NOT_STORED', [name, version, stored.map((v) => v.version).join(', ') || '(none)']);
    await this.#enqueue(fromStore(name, found));
    if (this.#context.registry.active(name)?.version !== version) {
      const error = this.#context.status.model(name)?.error;
      throw recordedError(error?.code ?? 'EI_INTERNAL', error?.message ?? `Model "${name}" did not become active`);
    }
  }

  /**
   * Makes the slot's candidate its active version, after the slot's deploy under way (if any). It stays active
   * while the desired state names it as the candidate, across restarts. Throws EI_NO_CANDIDATE without one.
   */
  async promote(name: string, by: PromotedBy, reason: string | null = null): Promise<void> {
    await this.#work.get(name);
    const candidate = this.#candidates.get(name);
    if (!candidate || this.#context.registry.candidate(name) === undefined) throw new EdgeInferError('EI_NO_CANDIDATE', [name]);
    await this.#promote(candidate, by, reason);
  }

  /** What the slot's autoPromote rule decided: promote, or stay a candidate with the reason in the status. */
  judged(name: string, verdict: { promote: boolean; reason: string }): void {
    const candidate = this.#candidates.get(name);
    if (!candidate) return;
    if (verdict.promote) {
      this.promote(name, 'autoPromote', verdict.reason).catch((error: unknown) => this.#context.log.warn({ model: name, err: error }, 'the candidate could not be promoted by its rule'));
      return;
    }
    const rule = candidate.shadow.autoPromote;
    if (rule) this.#context.status.updateCandidate(name, { version: candidate.version, autoPromote: { rule, verdict: 'refused', reason: verdict.reason } });
    this.#context.log.info({ model: name, candidate: candidate.version, reason: verdict.reason }, 'the candidate stays a candidate: its rule refused it');
  }

  /** Resolves when no deploy is running or queued (tests and shutdown). */
  async settled(): Promise<void> {
    while (this.#work.size > 0) await Promise.all(this.#work.values());
  }

  /** Runs `spec` after the slot's current deploy; a newer spec queued meanwhile replaces it. */
  #enqueue(spec: ModelSpec): Promise<void> {
    this.#queue.set(spec.name, spec);
    const running = this.#work.get(spec.name);
    if (running) return running;
    const work = (async () => {
      for (let next = this.#queue.get(spec.name); next; next = this.#queue.get(spec.name)) {
        this.#queue.delete(spec.name);
        const due = next;
        let swapped = false;
        if (!this.#isRunning(due)) {
          // Waiting for its turn, the slot is pending (requests answer 503, not 404); removed meanwhile, it is skipped.
          if (!this.#context.registry.active(due.name)) this.#context.registry.expect(due.name);
          this.#context.status.updateModel(due.name, { status: 'pending', desiredVersion: due.version });
          swapped = await this.#loads.run(async () => (this.#wanted && !this.#wanted.has(due.name) ? false : this.#activate(due)));
          // Only what became active counts as running: a version that failed is tried again when asked again.
          if (swapped) this.#running.set(spec.name, specKey(due));
        }
        await this.#loads.run(async () => (this.#wanted && !this.#wanted.has(due.name) ? undefined : this.#shadow(due, swapped)));
        // Removed from the desired state while it loaded: it must not stay behind.
        if (this.#wanted && !this.#wanted.has(spec.name)) this.#remove(spec.name);
      }
    })().finally(() => this.#work.delete(spec.name));
    this.#work.set(spec.name, work);
    return work;
  }

  /** The slot runs `spec`'s version now, as asked. */
  #isRunning(spec: ModelSpec): boolean {
    return this.#running.get(spec.name) === specKey(spec) && this.#context.registry.active(spec.name) !== undefined;
  }

  /** Makes `spec` the slot's active version: the loaded candidate when it is that version (the twin's promote), else a deploy. */
  async #activate(spec: ModelSpec): Promise<boolean> {
    const candidate = this.#candidates.get(spec.name);
    if (candidate && specKey(candidate) === specKey(spec) && this.#context.registry.candidate(spec.name)) {
      await this.#promote(candidate, 'twin', null);
      return true;
    }
    return deployModel(spec, this.#context);
  }

  /**
   * Brings the slot's candidate in line with `spec`: loaded, re-set, or dropped.
   * @param swapped another version became active: a candidate kept is compared from zero with the new one.
   */
  async #shadow(spec: ModelSpec, swapped: boolean): Promise<void> {
    const { name, candidate: wanted } = spec;
    const current = this.#candidates.get(name);
    if (!wanted) {
      this.#context.status.updateCandidate(name, null);
      if (!current) return;
      this.#dropCandidate(name);
      await this.#context.store.recordCandidate(name, undefined).catch((error: unknown) => this.#context.log.warn({ model: name, err: error }, 'the store state could not be saved'));
      return;
    }
    this.#candidates.set(name, wanted);
    const loaded = this.#context.registry.candidate(name);
    if (current && specKey(current) === specKey(wanted) && loaded) {
      const { status } = this.#context;
      if (swapped) {
        status.updateCandidate(name, { version: wanted.version, shadowShare: wanted.shadow.share, autoPromote: waitingFor(wanted) });
        this.#context.shadow?.start(name, loaded, wanted.shadow);
        return;
      }
      // The same version with other shadow settings: its statistics go on, and a rule judges again only if it changed.
      const ruleChanged = JSON.stringify(current.shadow.autoPromote) !== JSON.stringify(wanted.shadow.autoPromote);
      this.#context.shadow?.configure(name, wanted.shadow, ruleChanged);
      status.updateCandidate(name, { version: wanted.version, shadowShare: wanted.shadow.share, ...(ruleChanged ? { autoPromote: waitingFor(wanted) } : {}) });
      return;
    }
    if (await deployCandidate(wanted, this.#context)) return;
    // The candidate loaded before (if any) is still the one shadowed.
    if (current) this.#candidates.set(name, current);
    else this.#candidates.delete(name);
  }

  async #promote(candidate: CandidateSpec, by: PromotedBy, reason: string | null): Promise<void> {
    await promoteCandidate(candidate, this.#context, { by, reason });
    this.#running.set(candidate.name, specKey(candidate));
    this.#candidates.delete(candidate.name);
  }

  #dropCandidate(name: string): void {
    this.#candidates.delete(name);
    this.#context.shadow?.stop(name);
    this.#context.registry.removeCandidate(name);
    this.#context.status.updateCandidate(name, null);
  }

  /**
   * A desired slot as a deploy spec, or the problem that keeps it from being one. A slot whose candidate was
   * promoted (by the twin's flag, or by a person or rule as the store remembers) runs the candidate as its version.
   */
  #specOf(name: string, slot: unknown): ModelSpec | string {
    const checked = checkSlot(name, slot);
    if (typeof checked === 'string') return checked;
    const { candidate } = checked;
    if (!candidate) return toSpec(name, checked);
    const stored = this.#context.store.active(name);
    if (candidate.promote || (stored?.promoted && stored.version === candidate.version)) return toSpec(name, candidate);
    const spec = toSpec(name, checked);
    const shadowed = candidateSpec(name, candidate);
    // A candidate that is the slot's own version (the roll-out's version layer arrived before the candidate layer
    // went) has nothing to be compared with: the slot runs it, and the copy shadowed until now is what it promotes.
    return specKey(shadowed) === specKey(spec) ? spec : { ...spec, candidate: shadowed };
  }

  #remove(name: string): void {
    this.#asked.delete(name);
    this.#running.delete(name);
    this.#dropCandidate(name);
    this.#queue.delete(name);
    this.#context.registry.remove(name);
    this.#context.status.removeModel(name);
    // Each forget rewrites the state file whole: hundreds removed at once take their turns with the loads, and a
    // slot wanted again meanwhile keeps its record.
    void this.#loads.run(async () => (this.#wanted?.has(name) ? undefined : this.#context.store.forget(name)));
  }
}

/** A stored version as a deploy spec: its content from the store, with no download. */
function fromStore(name: string, stored: StoredVersion): ModelSpec {
  const { path, promoted: _promoted, ...rest } = stored;
  return { ...rest, name, uri: path };
}

const DEFAULT_SHADOW_SHARE = 0.1;
const DEFAULT_TOLERANCE = 0.001;

function candidateSpec(name: string, candidate: CandidateSlot): CandidateSpec {
  const { shadowShare, tolerance, autoPromote } = candidate;
  return { ...toSpec(name, candidate), shadow: { share: shadowShare ?? DEFAULT_SHADOW_SHARE, tolerance: tolerance ?? DEFAULT_TOLERANCE, ...(autoPromote ? { autoPromote } : {}) } };
}

/** A candidate's key: its version's, and how it is shadowed. */
function candidateKey(candidate: CandidateSpec): string {
  return JSON.stringify([specKey(candidate), candidate.shadow]);
}

function toSpec(name: string, slot: ModelSlot | CandidateSlot): ModelSpec {
  const { version, uri, sha256, size, target, fallback, threads, gpu, accelerator, batching, model, image, postprocess, limits } = slot;
  const settings = Object.fromEntries(Object.entries({ model, image, postprocess, limits }).filter(([, v]) => v !== undefined));
  return {
    name,
    version,
    uri,
    ...(sha256 ? { sha256: sha256.toLowerCase() } : {}),
    ...(size ? { size } : {}),
    ...(Object.keys(settings).length > 0 ? { settings } : {}),
    ...(target ? { target } : {}),
    ...(fallback ? { fallback } : {}),
    ...(threads ? { threads } : {}),
    ...(gpu ? { gpu } : {}),
    ...(accelerator ? { accelerator } : {}),
    ...(batching ? { batching } : {}),
  };
}

/** Two specs with the same key run the same thing: same version, same content (or place), same settings. */
function specKey(spec: ModelSpec): string {
  return JSON.stringify([spec.version, spec.sha256 ?? spec.uri, spec.settings ?? {}, spec.target ?? 'cpu', spec.fallback ?? 'cpu', spec.threads ?? 0, spec.gpu ?? {}, spec.accelerator ?? {}, spec.batching ?? {}]);
}
