/**
 * The status page's recent results and errors. Every scoring call's outcome (ModelRegistry's `onUsed`, so every
 * source) becomes a short entry: source, model, version, latency, and a summary ("3 faces") or the error. At most
 * PER_SECOND entries a second per model are made; the rest are only counted, and the count becomes an entry of
 * its own when that second ends, so a burst is said, not hidden. The last KEPT entries are kept for a page that
 * opens later. Entries describe calls, not state: what runs stays in the status store alone.
 */
import { EventEmitter } from 'node:events';
import { isEdgeInferError, messageOf } from '../errors.js';
import type { ScoreSource, UseOutcome } from '../models/registry.js';
import type { EncodedInferResponse } from '../pipeline/oip-codec.js';
import { summarizeInferResponse, summarizeResult } from './result-summary.js';

export const PER_SECOND = 5;
export const KEPT = 30;
/** Error messages are cut here: an entry is a line on a page. */
const MESSAGE_CHARS = 200;

interface Call {
  source: ScoreSource;
  /** The version that ran; null when none did (refused, not found). */
  version: string | null;
  latencyMs: number;
}

type EntryFields =
  | ({ kind: 'result'; model: string; summary: string } & Call)
  | ({ kind: 'error'; model: string; error: { code: string; message: string } } & Call)
  /** `model` null: calls that reached no version (an unknown name, a refusal), which share one limit. */
  | { kind: 'skipped'; model: string | null; count: number };

/** `id` grows by one per entry, so a page that got some entries twice (a reconnect) can tell. */
export type RecentEntry = { id: number; at: string } & EntryFields;

export class RecentResults extends EventEmitter<{ entry: [RecentEntry] }> {
  readonly #kept: RecentEntry[] = [];
  /** This second's entries made and outcomes skipped, per model (null: no version reached); cleared when the second ends. */
  readonly #second = new Map<string | null, { listed: number; skipped: number }>();
  #secondTimer: NodeJS.Timeout | undefined;
  #lastId = 0;

  /** Called on the scoring path: skipping costs a map lookup; only listed outcomes are summarised. */
  record(outcome: UseOutcome): void {
    const model = outcome.name ?? '(no default model)';
    if (!this.#secondTimer) this.#secondTimer = setTimeout(() => this.#endSecond(), 1000).unref();
    // Names come from request paths, without bound: a call that reached no version is limited with all such calls.
    const limitedAs = outcome.model ? model : null;
    let counts = this.#second.get(limitedAs);
    if (!counts) this.#second.set(limitedAs, (counts = { listed: 0, skipped: 0 }));
    if (counts.listed >= PER_SECOND) {
      counts.skipped++;
      return;
    }
    counts.listed++;
    const call: Call = { source: outcome.source, version: outcome.model?.version ?? null, latencyMs: Math.round(outcome.ms * 10) / 10 };
    if ('error' in outcome) {
      const { error } = outcome;
      const code = isEdgeInferError(error) ? error.code : 'EI_INTERNAL';
      this.#add({ kind: 'error', model, ...call, error: { code, message: messageOf(error).slice(0, MESSAGE_CHARS) } });
    } else {
      this.#add({ kind: 'result', model, ...call, summary: summaryOf(outcome) });
    }
  }

  /** The last KEPT entries, oldest first. */
  recent(): RecentEntry[] {
    return [...this.#kept];
  }

  #endSecond(): void {
    this.#secondTimer = undefined;
    for (const [model, { skipped }] of this.#second) if (skipped > 0) this.#add({ kind: 'skipped', model, count: skipped });
    this.#second.clear();
  }

  #add(fields: EntryFields): void {
    const entry: RecentEntry = { id: ++this.#lastId, at: new Date().toISOString(), ...fields };
    this.#kept.push(entry);
    if (this.#kept.length > KEPT) this.#kept.shift();
    this.emit('entry', entry);
  }
}

/**
 * What each source's work hands back: the OIP route its encoded answer; every other source `{result, model}`
 * (score.ts, and a camera, which hands back nothing when the frame no longer fits the model).
 */
function summaryOf(outcome: UseOutcome & { value: unknown }): string {
  if (outcome.source === 'oip') return summarizeInferResponse(outcome.value as EncodedInferResponse);
  const scored = outcome.value as { result: unknown } | undefined;
  return scored ? summarizeResult(scored.result, outcome.model) : 'not scored: the frame did not fit the model';
}
