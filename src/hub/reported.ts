/**
 * Reported properties from the status store (contract section 5): at most one patch a second, only what
 * changed, `null` for a model or camera that is gone. A patch that fails is sent again a second later, or on the next connect.
 */
import type { Logger } from 'pino';
import type { StatusSnapshot, StatusStore } from '../status/store.js';

export type SendReported = (patch: Record<string, unknown>) => Promise<void>;

/** The snapshot's collections keyed by name, reported entry by entry. */
const COLLECTIONS = ['models', 'cameras'] as const;
type Collection = (typeof COLLECTIONS)[number];
/** Each entry as last reported, as JSON text, per collection. */
type SentEntries = Record<Collection, Record<string, string>>;

export class ReportedProperties {
  readonly #status: StatusStore;
  readonly #log: Logger;
  readonly #intervalMs: number;
  #send: SendReported | undefined;
  /** What the twin holds, as far as we know: the last patch that was acknowledged, merged. */
  #sent: { runtime?: string } & SentEntries = { models: {}, cameras: {} };
  #timer: NodeJS.Timeout | undefined;
  #lastSentAt = 0;
  #flushing: Promise<void> = Promise.resolve();

  constructor(status: StatusStore, log: Logger, intervalMs = 1000) {
    this.#status = status;
    this.#log = log;
    this.#intervalMs = intervalMs;
    status.on('change', () => this.#schedule());
  }

  /**
   * Sends through `send` from now on. `reported` is the twin's reported side as read on connect, so that
   * models and cameras the twin still lists but the module no longer runs are set to null.
   */
  attach(send: SendReported, reported: Record<string, unknown>): void {
    this.#send = send;
    const listed = (collection: Collection) => {
      const entries = (reported[collection] ?? {}) as Record<string, unknown>;
      return Object.fromEntries(Object.keys(entries).filter((k) => !k.startsWith('$')).map((name) => [name, 'unknown']));
    };
    this.#sent = { models: listed('models'), cameras: listed('cameras') };
    this.#schedule(0);
  }

  detach(): void {
    this.#send = undefined;
  }

  /** Sends what is pending now (shutdown). */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#flushing = this.#flushing.then(() => this.#sendChanges());
    return this.#flushing;
  }

  #schedule(delay = Math.max(0, this.#lastSentAt + this.#intervalMs - Date.now())): void {
    if (this.#timer || !this.#send) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, delay);
  }

  async #sendChanges(): Promise<void> {
    const send = this.#send;
    if (!send) return;
    const snapshot = this.#status.snapshot();
    const runtime = JSON.stringify(snapshot.runtime);
    const patch: Record<string, unknown> = {};
    if (runtime !== this.#sent.runtime) patch.runtime = snapshot.runtime;
    const next: SentEntries = { models: {}, cameras: {} };
    for (const collection of COLLECTIONS) {
      const changes = this.#changes(collection, snapshot, next[collection]);
      if (Object.keys(changes).length > 0) patch[collection] = changes;
    }
    if (Object.keys(patch).length === 0) return;
    this.#lastSentAt = Date.now();
    try {
      await send(patch);
      this.#sent = { runtime, ...next };
    } catch (error) {
      this.#log.warn({ err: error }, 'reported properties not sent; trying again');
      this.#schedule(this.#intervalMs);
    }
  }

  /** The entries of one collection that differ from what was sent, and null for those gone; fills `next`. */
  #changes(collection: Collection, snapshot: StatusSnapshot, next: Record<string, string>): Record<string, unknown> {
    const sent = this.#sent[collection];
    const changes: Record<string, unknown> = {};
    for (const [name, entry] of Object.entries(snapshot[collection])) {
      const text = JSON.stringify(entry);
      next[name] = text;
      if (sent[name] !== text) changes[name] = entry;
    }
    for (const name of Object.keys(sent)) if (!(name in next)) changes[name] = null;
    return changes;
  }
}
