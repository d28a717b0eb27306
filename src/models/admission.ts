/**
 * Admission to one model slot: at most `inFlight` requests run at once, at most `waiting` wait in order, and
 * anything past that is refused at once (EI_OVERLOADED) instead of queued without bound; with a wait budget, so is
a request expected to wait longer than the budget, however few wait. A waiting request
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
  /**
   * The longest a request may expect to wait for its turn, in milliseconds, or `auto`: the service time the model
   * reaches without contention (the fastest recent one).
   * A request that would wait longer is refused at once, however few wait. Unset: the count alone bounds waiting.
   */
  maxQueueWait?: number | 'auto';
}

export interface AdmissionCounts {
  inFlight: number;
  waiting: number;
  /** Refused at the bound, since the slot was first served. */
  shed: number;
  /** Left the queue because their caller went away. */
  abandoned: number;
}

/** A refused request may come back after this long: a waiting request's turn comes within about one inference. */
const RETRY_AFTER_SECONDS = 1;

/**
 * One ONNX Runtime inference already spreads over `threads` intra-op threads (one per core by default), so
 * cores / threads runs keep every core busy; at least two, so that one request's pre- and postprocessing overlap
 * another's inference (an image's decoding overlaps the wait itself: `nextUp` in run). More only time-slices the
 * same cores and stretches every request. Sixteen times as many may wait: a burst of clients (several cameras, a
 * batch script, retries) is absorbed rather than refused, and the last in line waits about sixteen inferences
 * (under half a second for the bundled model), not the seconds an unbounded queue reached. Where latency under
 * sustained overload matters more than bursts, `--max-waiting` equal to the in-flight count shortens an accepted
 * request's wait (bench/admission.ts measures both settings).
 */
export function defaultAdmissionLimits(threads?: number): AdmissionLimits {
  const cores = availableParallelism();
  const inFlight = Math.max(2, Math.floor(cores / (threads ?? cores)));
  return { inFlight, waiting: 16 * inFlight };
}

/** How much each finished request moves the service-time average: recent enough to follow load, not one outlier. */
const SERVICE_WEIGHT = 0.2;

interface Waiter {
  admit(): void;
  /** Told once, when the waiter is among the next `inFlight` in line (Admission.run's `nextUp`). */
  nextUp: (() => void) | undefined;
}

export class Admission {
  #limits: AdmissionLimits;
  readonly #queue: Waiter[] = [];
  #running = 0;
  #shed = 0;
  #abandoned = 0;
  /** A moving average of how long admitted work takes, in ms; undefined until some has run. */
  #serviceMs: number | undefined;
  /** The fastest recent service time: the lowest seen, rising 1% a request so that it follows a slower model or device. */
  #fastestMs = Infinity;

  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
  }

  /**
   * Runs `work` once admitted; refuses at once past the bound; leaves the queue when `signal` aborts.
   * `nextUp` is called once, when the request's turn is near: admitted now, or among the next `inFlight` in line.
   * Work begun there (decoding an image) overlaps the wait for the turn, while at most as many requests do it
   * ahead as run at once: deeper in the queue it would be CPU spent now for requests that may yet be abandoned,
   * taken from the ones running.
   */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal, nextUp?: () => void): Promise<T> {
    await this.#enter(signal, nextUp);
    const started = performance.now();
    try {
      return await work();
    } finally {
      const took = performance.now() - started;
      this.#serviceMs = this.#serviceMs === undefined ? took : this.#serviceMs + SERVICE_WEIGHT * (took - this.#serviceMs);
      this.#fastestMs = Math.min(took, this.#fastestMs * 1.01);
      this.#running--;
      this.#queue.shift()?.admit();
      this.#tellNextUp();
    }
  }

  /**
   * Refuses now, as `run` would, when every place is taken: lets a frontend refuse before it reads and decodes
   * a body that would be refused anyway (the reading is what loads the event loop under overload).
   */
  refuseIfFull(): void {
    if (this.#running < this.#limits.inFlight) return;
    if (this.#queue.length < this.#limits.waiting && !this.#waitTooLong()) return;
    this.#shed++;
    throw new EdgeInferError('EI_OVERLOADED', [this.#limits.inFlight, this.#limits.waiting]).retryAfter(RETRY_AFTER_SECONDS);
  }

  /**
   * Whether a newcomer would wait past the budget: with every place taken, a place frees about every service
   * time / in flight, so the newcomer's turn comes after (waiting + 1) of those. Refusing by expected wait rather
   * than by count alone keeps accepted requests near the unloaded latency under sustained overload, where a long
   * queue made the last in line wait 16 inferences (bench/admission.ts). Under contention the average service
   * time grows past the fastest, so `auto` lets fewer wait exactly when each wait is longer.
   */
  #waitTooLong(): boolean {
    const { maxQueueWait, inFlight } = this.#limits;
    if (maxQueueWait === undefined || this.#serviceMs === undefined) return false;
    const budget = maxQueueWait === 'auto' ? this.#fastestMs : maxQueueWait;
    return ((this.#queue.length + 1) / inFlight) * this.#serviceMs > budget;
  }

  /** New bounds for a slot already served (a version that batches differently); more places admit waiters at once. */
  setLimits(limits: AdmissionLimits): void {
    this.#limits = limits;
    while (this.#running < limits.inFlight && this.#queue.length > 0) this.#queue.shift()!.admit();
    this.#tellNextUp();
  }

  /** Tells the waiters now among the next `inFlight` in line that their turn is near (each once). */
  #tellNextUp(): void {
    const near = Math.min(this.#limits.inFlight, this.#queue.length);
    for (let i = 0; i < near; i++) tellOnce(this.#queue[i]!);
  }

  counts(): AdmissionCounts {
    return { inFlight: this.#running, waiting: this.#queue.length, shed: this.#shed, abandoned: this.#abandoned };
  }

  #enter(signal: AbortSignal | undefined, nextUp: (() => void) | undefined): Promise<void> {
    if (signal?.aborted) {
      this.#abandoned++;
      return Promise.reject(new EdgeInferError('EI_CLIENT_GONE'));
    }
    if (this.#running < this.#limits.inFlight) {
      this.#running++;
      nextUp?.();
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
        this.#tellNextUp();
        reject(new EdgeInferError('EI_CLIENT_GONE'));
      };
      const waiter: Waiter = {
        nextUp,
        admit: () => {
          signal?.removeEventListener('abort', leave);
          // Admitted past others when more places opened at once (setLimits).
          tellOnce(waiter);
          this.#running++;
          resolve();
        },
      };
      signal?.addEventListener('abort', leave, { once: true });
      this.#queue.push(waiter);
      this.#tellNextUp();
    });
  }
}

function tellOnce(waiter: Waiter): void {
  const nextUp = waiter.nextUp;
  waiter.nextUp = undefined;
  nextUp?.();
}
