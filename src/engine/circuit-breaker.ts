/**
 * A circuit breaker for a remote target: `failures` failures in a row open it; while open nothing is sent to
 * the server; after `resetMs` a trial runs by itself (no request has to come), which closes it when it
 * succeeds and opens it again for another `resetMs` when it does not.
 */
export type BreakerState = 'closed' | 'open';

export interface BreakerOptions {
  failures: number;
  resetMs: number;
  /** The trial: resolves when the server can take requests again. */
  trial: () => Promise<void>;
  onChange: (state: BreakerState, reason: string) => void;
}

export class CircuitBreaker {
  #state: BreakerState = 'closed';
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #options: BreakerOptions;

  constructor(options: BreakerOptions) {
    this.#options = options;
  }

  get closed(): boolean {
    return this.#state === 'closed';
  }

  succeeded(): void {
    this.#failures = 0;
  }

  failed(reason: string): void {
    if (this.#state === 'open') return;
    if (++this.#failures >= this.#options.failures) this.open(reason);
  }

  /** Opens at once (a server found down at load time). */
  open(reason: string): void {
    if (this.#stopped) return;
    this.#state = 'open';
    this.#options.onChange('open', reason);
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#try(), this.#options.resetMs);
    this.#timer.unref();
  }

  async #try(): Promise<void> {
    try {
      await this.#options.trial();
    } catch (error) {
      if (this.#stopped) return;
      this.#options.onChange('open', error instanceof Error ? error.message : String(error));
      this.#schedule();
      return;
    }
    if (this.#stopped) return;
    this.#state = 'closed';
    this.#failures = 0;
    this.#options.onChange('closed', 'the accelerator answers again');
  }
}
