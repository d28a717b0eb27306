/**
 * Reported properties from the status store (contract section 5): at most one patch a second, only what
 * changed, `null` for a model that is gone. A patch that fails is sent again a second later, or on the next connect.
 */
import type { Logger } from 'pino';
import type { ModelStatus, StatusStore } from '../status/store.js';

export type SendReported = (patch: Record<string, unknown>) => Promise<void>;

export class ReportedProperties {
  readonly #status: StatusStore;
  readonly #log: Logger;
  readonly #intervalMs: number;
  #send: SendReported | undefined;
  /** What the twin holds, as far as we know: the last patch that was acknowledged, merged. */
  #sent: { runtime?: string; models: Record<string, string> } = { models: {} };
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
   * models the twin still lists but the module no longer runs are set to null.
   */
  attach(send: SendReported, reported: Record<string, unknown>): void {
    this.#send = send;
    const models = (reported.models ?? {}) as Record<string, unknown>;
    this.#sent = { models: Object.fromEntries(Object.keys(models).filter((k) => !k.startsWith('$')).map((name) => [name, 'unknown'])) };
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
    const models: Record<string, ModelStatus | null> = {};
    const nextModels: Record<string, string> = {};
    for (const [name, model] of Object.entries(snapshot.models)) {
      const text = JSON.stringify(model);
      nextModels[name] = text;
      if (this.#sent.models[name] !== text) models[name] = model;
    }
    for (const name of Object.keys(this.#sent.models)) if (!(name in nextModels)) models[name] = null;
    const patch: Record<string, unknown> = {};
    if (runtime !== this.#sent.runtime) patch.runtime = snapshot.runtime;
    if (Object.keys(models).length > 0) patch.models = models;
    if (Object.keys(patch).length === 0) return;
    this.#lastSentAt = Date.now();
    try {
      await send(patch);
      this.#sent = { runtime, models: nextModels };
    } catch (error) {
      this.#log.warn({ err: error }, 'reported properties not sent; trying again');
      this.#schedule(this.#intervalMs);
    }
  }
}
