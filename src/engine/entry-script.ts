/**
 * Entry scripts, Azure ML's pattern in JavaScript: a package's `score.mjs` exports `init(ctx)`, run once per
 * loaded version, and `run(input, ctx)`, run per request, whose result is sent back as JSON.
 *
 * Each loaded version's script runs in a worker thread of its own (script-worker-thread.ts), so that nothing it
 * does (an `init` that never ends, an endless loop, `process.exit()`, a throw from its own timer, a heap that
 * grows without end) reaches the module: the version's load fails, or its requests do.
 *
 * A worker that ends once its version is serving is started again by the next request, not left dead: a run
 * deadline can only be enforced by ending the worker, and one request that hangs or crashes the script (a
 * poison input) must not take the model down until the next deployment. A start that fails (its `init` throws
 * or passes the load deadline) is not retried for a while, doubling up to a minute, so a script that cannot
 * start costs one attempt a minute, not one per request; requests meanwhile fail at once with that start's error.
 */
import type { Logger } from 'pino';
import { backoffDelay, type Backoff } from '../backoff.js';
import { EdgeInferError } from '../errors.js';
import type { ModelSettings } from '../models/manifest.js';
import type { PostprocessorPlan, ScriptInput } from './script-worker-protocol.js';
import { ScriptThread, type ScriptLimits, type ScriptServices, type ScriptThreadOptions } from './script-worker-thread.js';

export type { ScriptLimits, ScriptServices } from './script-worker-thread.js';
export type { ScriptInput } from './script-worker-protocol.js';

/** Settings --script-load-timeout, --script-run-timeout and --script-memory, when not given. */
export const DEFAULT_SCRIPT_LIMITS: ScriptLimits = {
  // Importing and initialising may load models and read files on a slow device's SD card.
  loadTimeoutMs: 60_000,
  // Far past one inference of any model sized for an edge device (seconds at most), and under the 60 s
  // after which HTTP clients and proxies commonly give up: the caller gets our coded answer, not a dropped
  // connection, and a stuck script holds its admission slot for half a minute at most.
  runTimeoutMs: 30_000,
  // The worker's JavaScript heap: labels, anchors, results. Tensor data lives outside it (see README, Security),
  // and two versions of a slot run at once during a swap.
  memoryMb: 256,
};

export interface EntryScript {
  run(input: ScriptInput): Promise<unknown>;
  /** Ends the worker for good (the version is released, or its load failed). */
  stop(): Promise<void>;
}

export interface EntryScriptOptions {
  modelName: string;
  version: string;
  file: string;
  dir: string;
  settings: ModelSettings;
  limits?: ScriptLimits;
  services: ScriptServices;
  postprocessor?: PostprocessorPlan;
  log: Logger;
}

/** Between failed starts of a serving version's script. */
const RESTART_BACKOFF: Backoff = { firstMs: 1000, mostMs: 60_000 };

/** Starts the script's worker: resolves once its `init` is done, or rejects with the coded reason it is not. */
export async function loadEntryScript(options: EntryScriptOptions): Promise<EntryScript> {
  const script = new RestartingScript(options);
  await script.start();
  return script;
}

class RestartingScript implements EntryScript {
  readonly #options: ScriptThreadOptions;
  #thread: ScriptThread | undefined;
  #starting: Promise<ScriptThread> | undefined;
  #stopped = false;
  /** The last failed start, and until when requests get its error instead of another start. */
  #failed: { error: unknown; until: number; failures: number } | undefined;

  constructor(options: EntryScriptOptions) {
    const { log } = options;
    this.#options = {
      ...options,
      limits: options.limits ?? DEFAULT_SCRIPT_LIMITS,
      onEnd: (error, cause) => {
        const fields = { code: error.code, err: cause ?? error, ...(cause instanceof Error && cause.cause !== undefined ? { cause: cause.cause } : {}) };
        log.error(fields, `${error.message}; the module goes on, and the next request starts the script again`);
      },
    };
  }

  async start(): Promise<void> {
    this.#thread = await ScriptThread.start(this.#options);
  }

  async run(input: ScriptInput): Promise<unknown> {
    if (this.#stopped) throw new EdgeInferError('EI_SCRIPT_CRASHED', [this.#options.modelName, 'on purpose', 'its version was released']);
    const thread = this.#thread?.alive ? this.#thread : await this.#restart();
    return thread.run(input);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#starting?.catch(() => undefined);
    await this.#thread?.stop();
  }

  #restart(): Promise<ScriptThread> {
    if (this.#failed && performance.now() < this.#failed.until) return Promise.reject(this.#failed.error as EdgeInferError);
    this.#starting ??= this.#startAgain().finally(() => (this.#starting = undefined));
    return this.#starting;
  }

  async #startAgain(): Promise<ScriptThread> {
    const { log } = this.#options;
    try {
      const thread = await ScriptThread.start(this.#options);
      if (this.#stopped) {
        await thread.stop();
        throw new EdgeInferError('EI_SCRIPT_CRASHED', [this.#options.modelName, 'on purpose', 'its version was released']);
      }
      this.#thread = thread;
      this.#failed = undefined;
      log.info('the entry script was started again');
      return thread;
    } catch (error) {
      const failures = (this.#failed?.failures ?? 0) + 1;
      const retryMs = backoffDelay(failures - 1, RESTART_BACKOFF);
      this.#failed = { error, until: performance.now() + retryMs, failures };
      log.error({ err: error, retryMs }, 'the entry script could not be started again; its requests fail until the next try');
      throw error;
    }
  }
}
