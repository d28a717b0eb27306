/**
 * At most `size` model loads at a time, in arrival order, each after a turn of the event loop. Loading a version
 * (ONNX Runtime building its session, the warm-up inference) runs on the event loop's thread for tens to hundreds
 * of milliseconds; 500 slots loaded at once held every route for 21 s. With a few at a time and a turn between,
 * a request waits for at most the loads under way, and the slots behind them wait as `pending`.
 */
import { availableParallelism } from 'node:os';
import { setImmediate as nextTurn } from 'node:timers/promises';

export class LoadGate {
  readonly #size: number;
  readonly #waiting: Array<() => void> = [];
  #running = 0;

  /** One load per core by default: loads are CPU work, more at once only interleave them. */
  constructor(size = availableParallelism()) {
    this.#size = Math.max(1, size);
  }

  async run<T>(load: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#size) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      // Requests queued behind the last load go first.
      await nextTurn();
      return await load();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
