/**
 * Output messages (answers to input messages, camera results) wait here while the link to edgeHub is down.
 *
 * Why it must exist: over MQTT the SDK acknowledges an input message when it arrives, not when the module
 * completes it, so edgeHub never delivers it again. An answer that could not be sent is kept and sent once a
 * session is back, oldest first; without this it would be lost (the soak run lost 14 answers this way across
 * edgeHub restarts). Delivery is at least once: an answer whose acknowledgement was lost with the connection is
 * sent again, as IoT Hub's own delivery is.
 *
 * Bounded by count: past `limit` waiting messages the oldest is dropped, counted and logged, never silently.
 */
import type { Logger } from 'pino';
import { EdgeInferError, messageOf } from '../errors.js';
import type { OutputMessage } from '../sources/result-message.js';

export interface OutboxOptions {
  /** Sends one message on the session of the moment; rejects when there is none or it fails. */
  deliver: (message: OutputMessage) => Promise<void>;
  /** Most messages kept waiting. */
  limit: number;
  log: Logger;
  /** Called with the number waiting whenever it changes. */
  onWaiting?: (waiting: number) => void;
  /** Called for each message given up (the bound was reached, or the module stopped). */
  onDropped?: (output: string) => void;
  /** While messages wait, sending is tried again this often (besides at once when a session opens). */
  retryMs?: number;
}

interface Waiting {
  message: OutputMessage;
  delivered: () => void;
  dropped: (error: Error) => void;
}

export class Outbox {
  readonly #options: OutboxOptions;
  readonly #waiting: Waiting[] = [];
  #flushing = false;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(options: OutboxOptions) {
    this.#options = options;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Resolves once the message reached edgeHub, however many sessions that took; rejects only when it is
   * given up (the bound, or the module stopping).
   */
  send(message: OutputMessage): Promise<void> {
    // Behind messages already waiting, a new one waits too: answers keep their order across an outage.
    if (this.#waiting.length === 0) {
      return this.#options.deliver(message).catch((error: unknown) => {
        if (this.#stopped) throw error;
        this.#options.log.debug({ err: messageOf(error), output: message.output }, 'an output message waits for the link to edgeHub');
        return this.#keep(message);
      });
    }
    return this.#keep(message);
  }

  /** Sends what waits, oldest first, until all is sent or a send fails (the next session resumes). */
  async resume(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#waiting.length > 0 && !this.#stopped) {
        const next = this.#waiting[0]!;
        try {
          await this.#options.deliver(next.message);
        } catch (error) {
          this.#options.log.warn({ err: messageOf(error), waiting: this.#waiting.length }, 'sending the waiting output messages stopped; the next session goes on');
          return;
        }
        // A drop at the bound may have removed it meanwhile.
        if (this.#waiting[0] === next) this.#waiting.shift();
        next.delivered();
        this.#changed();
      }
    } finally {
      this.#flushing = false;
    }
  }

  /** Gives up what waits (the module is stopping); later sends are tried once and not kept. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#retry);
    const given = this.#waiting.splice(0);
    if (given.length > 0) this.#options.log.warn({ messages: given.length }, 'output messages still waiting for edgeHub are given up: the module is stopping');
    for (const item of given) this.#drop(item, 'the module stopped before the link to edgeHub was back');
    this.#changed();
  }

  #keep(message: OutputMessage): Promise<void> {
    return new Promise<void>((delivered, dropped) => {
      this.#waiting.push({ message, delivered, dropped });
      if (this.#waiting.length > this.#options.limit) {
        const oldest = this.#waiting.shift()!;
        this.#options.log.warn({ output: oldest.message.output, limit: this.#options.limit }, 'the oldest output message waiting for edgeHub was dropped: the outbox is full');
        this.#drop(oldest, `more than ${this.#options.limit} output messages waited for edgeHub`);
      }
      this.#changed();
    });
  }

  #drop(item: Waiting, why: string): void {
    this.#options.onDropped?.(item.message.output);
    item.dropped(new EdgeInferError('EI_OUTPUT_NOT_SENT', [why]));
  }

  #changed(): void {
    this.#options.onWaiting?.(this.#waiting.length);
    // A send can fail just after a session opened and its resume() found nothing waiting: the timer makes sure
    // such a message does not wait for the next outage to go out.
    if (this.#waiting.length > 0 && !this.#retry && !this.#stopped) {
      this.#retry = setInterval(() => void this.resume(), this.#options.retryMs ?? 2000).unref();
    } else if (this.#waiting.length === 0 && this.#retry) {
      clearInterval(this.#retry);
      this.#retry = undefined;
    }
  }
}
