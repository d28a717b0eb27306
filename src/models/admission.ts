/**
 * Admission to one model slot: at most `inFlight` requests run at once, at most `waiting` wait in order, and
 * anything past that is refused at once (EI_OVERLOADED) instead of queued without bound. A waiting request
 * whose caller went away (its signal aborted) leaves the queue and never runs. Every source (REST, OIP,
 * messages, frames) comes through the registry, which keeps one of these per slot.
 */
import { availableParallelism } from 'node:os';
import { EdgeInferError } from '../errors.js';

export interface AdmissionLimits {
  /** Requests scored at once. */
  inFlight: number;
  /** Requests that may wait for a turn; past this they are refused. */
  waiting: number;
}

export interface AdmissionCounts {
  inFlight: number;
  waiting: number;
  /** Refused at the bound, since the slot was first served. */
  shed: number;
  /** Left the queue because their caller went away. */
  abandoned: number;
}

/**
 * One ONNX Runtime inference already spreads over `threads` intra-op threads (one per core by default), so
 * cores / threads runs keep every core busy; at least two, so that one request's decoding and encoding overlap
 * another's inference. More only time-slices the same cores and stretches every request. Sixteen times as many
 * may wait: a burst of clients (several cameras, a batch script, retries) is absorbed rather than refused, and the
 * last in line waits about sixteen inferences (under half a second for the bundled model), not the seconds an
 * unbounded queue reached. Where latency under sustained overload matters more than bursts, `--max-waiting`
 * equal to the in-flight count shortens an accepted request's wait (bench/admission.ts measures both settings).
 */
export function defaultAdmissionLimits(threads?: number): AdmissionLimits {
  const cores = availableParallelism();
  const inFlight = Math.max(2, Math.floor(cores / (threads ?? cores)));
  return { inFlight, waiting: 16 * inFlight };
}

interface Waiter {
  admit(): void;
}

export class Admission {
  #limits: AdmissionLimits;
  readonly #queue: Waiter[] = [];
  #running = 0;
  #shed = 0;
  #abandoned = 0;

  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
  }

  /** Runs `work` once admitted; refuses at once past the bound; leaves the queue when `signal` aborts. */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#enter(signal);
    try {
      return await work();
    } finally {
      this.#running--;
      this.#queue.shift()?.admit();
    }
  }

  /**
   * Refuses now, as `run` would, when every place is taken: lets a frontend refuse before it reads and decodes
   * a body that would be refused anyway (the reading is what loads the event loop under overload).
   */
  refuseIfFull(): void {
    if (this.#running < this.#limits.inFlight || this.#queue.length < this.#limits.waiting) return;
    this.#shed++;
    throw new EdgeInferError('EI_OVERLOADED', [this.#limits.inFlight, this.#limits.waiting]);
  }

  /** New bounds for a slot already served (a version that batches differently); more places admit waiters at once. */
  setLimits(limits: AdmissionLimits): void {
    this.#limits = limits;
    while (this.#running < limits.inFlight && this.#queue.length > 0) this.#queue.shift()!.admit();
  }

  counts(): AdmissionCounts {
    return { inFlight: this.#running, waiting: this.#queue.length, shed: this.#shed, abandoned: this.#abandoned };
  }

  #enter(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) {
      this.#abandoned++;
      return Promise.reject(new EdgeInferError('EI_CLIENT_GONE'));
    }
    if (this.#running < this.#limits.inFlight) {
      this.#running++;
      return Promise.resolve();
    }
    try {
      this.refuseIfFull();
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      const leave = () => {
        const index = this.#queue.indexOf(waiter);
        if (index < 0) return;
        this.#queue.splice(index, 1);
        this.#abandoned++;
        reject(new EdgeInferError('EI_CLIENT_GONE'));
      };
      const waiter: Waiter = {
        admit: () => {
          signal?.removeEventListener('abort', leave);
          this.#running++;
          resolve();
        },
      };
      signal?.addEventListener('abort', leave, { once: true });
      this.#queue.push(waiter);
    });
  }
}
