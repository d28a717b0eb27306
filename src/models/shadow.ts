/**
 * Shadow runs: a slot's candidate version gets a share of the inputs its active version answered, after the
 * answer, and its output is compared with the active one's (agreement.ts). The candidate never answers a
 * caller. Shadow work is the first thing dropped under load (counted): one run at a time, and only once the slot
 * has been quiet (nothing in flight or waiting) for twice as long as the active version took on that input, so
 * that a run fits in a gap between requests rather than sharing the cores with the next one. A slot kept busy
 * (a closed loop of clients, a queue) shadows nothing.
 */
import { isEdgeInferError, messageOf } from '../errors.js';
import type { ModelVersion, ScoreRequest } from '../engine/loaded-version.js';
import { refitPixels } from '../pipeline/refit-pixels.js';
import { compareOutputs, type Comparison } from './agreement.js';
import type { ShadowSettings } from './deploy.js';
import type { ModelRegistry } from './registry.js';
import { judge } from './auto-promote.js';
import { ShadowStats, type ShadowSnapshot } from './shadow-stats.js';
import { keptInput, type Tap, type TappedCall } from './tap.js';

/** Inputs waiting for the candidate, per slot: more are dropped. */
const MAX_WAITING = 8;
/** An input not run within this long (the slot stayed busy) is dropped: its moment has passed. */
const MAX_AGE_MS = 2000;
/** How often a busy slot is looked at again. */
const RETRY_MS = 10;
/** A run waits for the slot to be quiet this many times the active version's time on the input. */
const QUIET_FACTOR = 2;
/** The status is told at most this often per slot. */
const REPORT_MS = 1000;

export type ShadowOutcome = 'agreed' | 'disagreed' | 'failed' | 'dropped';

export interface ShadowEvents {
  /** Each shadowed input's outcome (metrics). */
  onOutcome?: (slot: string, outcome: ShadowOutcome) => void;
  /** The running comparison, at most once a second per slot (status). */
  onSnapshot: (slot: string, candidate: string, snapshot: ShadowSnapshot) => void;
  /** The slot's autoPromote rule has judged, once it had its samples. */
  onVerdict: (slot: string, verdict: { promote: boolean; reason: string }) => void;
  /** An input on which the candidate disagreed with the active version (data collection). */
  onDisagreement?: (call: TappedCall, candidate: { version: string; output: unknown }, comparison: Comparison) => void;
}

interface Shadowed {
  candidate: ModelVersion;
  settings: ShadowSettings;
  stats: ShadowStats;
  waiting: Array<{ call: TappedCall; at: number }>;
  running: boolean;
  /** The rule has given its verdict (a rule judges once; a changed rule judges again). */
  judged: boolean;
  report: NodeJS.Timeout | undefined;
}

export class Shadow implements Tap {
  readonly #registry: ModelRegistry;
  readonly #events: ShadowEvents;
  readonly #random: () => number;
  readonly #slots = new Map<string, Shadowed>();

  /** @param random picks the shared inputs (tests pass their own). */
  constructor(registry: ModelRegistry, events: ShadowEvents, random: () => number = Math.random) {
    this.#registry = registry;
    this.#events = events;
    this.#random = random;
  }

  /** Starts shadowing `candidate` on its slot, with statistics from zero. */
  start(slot: string, candidate: ModelVersion, settings: ShadowSettings): void {
    this.stop(slot);
    this.#slots.set(slot, { candidate, settings, stats: new ShadowStats(), waiting: [], running: false, judged: false, report: undefined });
    this.#report(slot);
  }

  /**
   * New settings for the candidate shadowed now, keeping its statistics.
   * @param ruleChanged its autoPromote rule is another one: it judges again.
   */
  configure(slot: string, settings: ShadowSettings, ruleChanged: boolean): void {
    const shadowed = this.#slots.get(slot);
    if (!shadowed) return;
    if (ruleChanged) shadowed.judged = false;
    shadowed.settings = settings;
    this.#judge(slot, shadowed);
  }

  stop(slot: string): void {
    const shadowed = this.#slots.get(slot);
    if (!shadowed) return;
    clearTimeout(shadowed.report);
    this.#slots.delete(slot);
  }

  snapshot(slot: string): ShadowSnapshot | undefined {
    return this.#slots.get(slot)?.stats.snapshot();
  }

  wants(slot: string): boolean {
    const share = this.#slots.get(slot)?.settings.share ?? 0;
    return share > 0;
  }

  seen(call: TappedCall): void {
    const shadowed = this.#slots.get(call.model.name);
    if (!shadowed || this.#random() >= shadowed.settings.share) return;
    if (shadowed.waiting.length >= MAX_WAITING) return this.#dropped(call.model.name, shadowed);
    shadowed.waiting.push({ call: { ...call, input: keptInput(call.input) }, at: performance.now() });
    // After the answer: the caller's reply is sent in the turn that resolved its call.
    if (!shadowed.running) setImmediate(() => void this.#pump(call.model.name));
  }

  async #pump(slot: string): Promise<void> {
    const shadowed = this.#slots.get(slot);
    if (!shadowed || shadowed.running) return;
    shadowed.running = true;
    try {
      while (this.#slots.get(slot) === shadowed && shadowed.waiting.length > 0) {
        const next = shadowed.waiting[0]!;
        if (performance.now() - next.at > MAX_AGE_MS) {
          shadowed.waiting.shift();
          this.#dropped(slot, shadowed);
          continue;
        }
        if (this.#registry.quietFor(slot) < QUIET_FACTOR * next.call.ms) {
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
          continue;
        }
        shadowed.waiting.shift();
        await this.#run(slot, shadowed, next.call);
      }
    } finally {
      shadowed.running = false;
    }
  }

  async #run(slot: string, shadowed: Shadowed, call: TappedCall): Promise<void> {
    const lease = this.#registry.acquireCandidate(slot);
    if (!lease || lease.model !== shadowed.candidate) {
      lease?.release();
      return this.#dropped(slot, shadowed);
    }
    const started = performance.now();
    try {
      const { input } = call;
      const output = input.kind === 'score' ? await lease.model.score(await sameInput(input.request, call.model, lease.model)) : await lease.model.infer(input.feeds, input.outputNames);
      const comparison = compareOutputs(call.output, output, shadowed.settings.tolerance);
      shadowed.stats.record(comparison, call.ms, performance.now() - started);
      this.#events.onOutcome?.(slot, comparison.agree ? 'agreed' : 'disagreed');
      if (!comparison.agree) this.#events.onDisagreement?.(call, { version: lease.model.version, output }, comparison);
    } catch (error) {
      shadowed.stats.failed({ code: isEdgeInferError(error) ? error.code : 'EI_INTERNAL', message: messageOf(error) });
      this.#events.onOutcome?.(slot, 'failed');
    } finally {
      lease.release();
    }
    this.#judge(slot, shadowed);
    this.#report(slot);
  }

  #dropped(slot: string, shadowed: Shadowed): void {
    shadowed.stats.dropped();
    this.#events.onOutcome?.(slot, 'dropped');
    this.#report(slot);
  }

  #judge(slot: string, shadowed: Shadowed): void {
    const rule = shadowed.settings.autoPromote;
    if (!rule || shadowed.judged) return;
    const verdict = judge(rule, shadowed.stats.snapshot());
    if (!verdict) return;
    shadowed.judged = true;
    this.#events.onVerdict(slot, verdict);
  }

  /** Tells the status the slot's comparison, at most once a second (the first at once). */
  #report(slot: string): void {
    const shadowed = this.#slots.get(slot);
    if (!shadowed || shadowed.report) return;
    this.#events.onSnapshot(slot, shadowed.candidate.version, shadowed.stats.snapshot());
    shadowed.report = setTimeout(() => {
      shadowed.report = undefined;
      if (this.#slots.get(slot) === shadowed) this.#events.onSnapshot(slot, shadowed.candidate.version, shadowed.stats.snapshot());
    }, REPORT_MS);
    shadowed.report.unref();
  }
}

/** `request` for the candidate: a camera frame's pixels, fitted to the active version's input, refitted to its own. */
async function sameInput(request: ScoreRequest, active: ModelVersion, candidate: ModelVersion): Promise<ScoreRequest> {
  const from = active.imagePlan;
  const to = candidate.imagePlan;
  if (request.kind !== 'pixels' || !from || !to || (from.width === to.width && from.height === to.height)) return request;
  return { kind: 'pixels', ...(await refitPixels(request, from, to)) };
}
