/**
 * One worker thread running one loaded version's entry script, seen from the main thread: started, loaded
 * (import and `init`) within the load deadline, each `run` within the run deadline, and ended. A worker that
 * passes a deadline is stopped (only that stops a synchronous loop); one that exits, throws from its own code or
 * runs out of heap ends by itself. Either way its pending requests fail with a coded error and the module goes on.
 * The script's `ctx` calls (model, sessions, image preprocessing, postprocessor) are served here.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { EdgeInferError, isEdgeInferError, messageOf } from '../errors.js';
import type { ModelSettings } from '../models/manifest.js';
import {
  fromWire,
  type PostprocessorPlan,
  plainTensors,
  toWire,
  transferablesOf,
  type ContextMethod,
  type FromWorker,
  type Outcome,
  type ScriptInput,
  type ScriptWorkerData,
  type ToWorker,
} from './script-worker-protocol.js';
import type { EngineModel } from './target.js';
import type { Feeds } from './tensor.js';

/** The limits every entry script's worker runs under (settings --script-load-timeout, --script-run-timeout, --script-memory). */
export interface ScriptLimits {
  loadTimeoutMs: number;
  runTimeoutMs: number;
  memoryMb: number;
}

/** What the main thread does for the script's `ctx`. */
export interface ScriptServices {
  model?: EngineModel;
  createSession(file: string): Promise<EngineModel>;
  imageToTensor(image: Buffer): Promise<Feeds>;
}

export interface ScriptThreadOptions {
  modelName: string;
  version: string;
  file: string;
  dir: string;
  settings: ModelSettings;
  limits: ScriptLimits;
  services: ScriptServices;
  /** The version's postprocessor, which the worker builds again for `ctx.postprocess`; unset when it has none. */
  postprocessor?: PostprocessorPlan;
  log: Logger;
  /**
   * Called once when the worker ends on its own or is stopped for a deadline (not by `stop`), once its `init` was
   * done; before that, the end is the rejection of `start`.
   */
  onEnd?: (error: EdgeInferError, cause: unknown) => void;
}

const WORKER_FILE = new URL('./script-worker.js', import.meta.url);

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export class ScriptThread {
  readonly #options: ScriptThreadOptions;
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  /** Sessions the script made with `ctx.createSession`, released when the worker ends. */
  readonly #sessions = new Map<number, EngineModel>();
  #lastId = 0;
  #lastSession = 0;
  #ready = false;
  /** Why the worker ended or is being ended; set once. */
  #end: EdgeInferError | undefined;
  /** What the worker threw, from its 'error' event (it comes before 'exit'). */
  #thrown: unknown;
  readonly #loaded: Promise<void>;
  readonly #exited: Promise<void>;

  /** Starts the worker; resolves once `init` is done, or rejects with the coded reason it is not. */
  static async start(options: ScriptThreadOptions): Promise<ScriptThread> {
    const thread = new ScriptThread(options);
    await thread.#loaded;
    return thread;
  }

  private constructor(options: ScriptThreadOptions) {
    this.#options = options;
    const { services, limits } = options;
    const workerData: ScriptWorkerData = {
      file: options.file,
      modelName: options.modelName,
      version: options.version,
      dir: options.dir,
      settings: options.settings,
      logLevel: options.log.level,
      ...(services.model ? { model: { file: services.model.file, signature: services.model.signature } } : {}),
      ...(options.postprocessor ? { postprocessor: options.postprocessor } : {}),
    };
    // At the old generation's limit Node ends the worker and gives its heap 16 MB of leeway to get there. V8's own
    // young generation grows to 16 MB semi-spaces, whose live objects one scavenge can promote all at once: past
    // the leeway V8 aborts the whole process (seen once in CI on Node 22). A young generation of a 32nd of the
    // limit, at most 8 MB, promotes far less than the leeway in one step.
    const young = Math.min(8, Math.max(1, Math.floor(limits.memoryMb / 32)));
    this.#worker = new Worker(WORKER_FILE, { workerData, resourceLimits: { maxOldGenerationSizeMb: limits.memoryMb, maxYoungGenerationSizeMb: young } });
    this.#loaded = new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(
        () => this.#stop(new EdgeInferError('EI_SCRIPT_TIMEOUT', [options.modelName, 'import and init()', limits.loadTimeoutMs / 1000, '--script-load-timeout'])),
        limits.loadTimeoutMs,
      );
      this.#whenReady = (error) => {
        clearTimeout(deadline);
        this.#whenReady = undefined;
        if (error) reject(error);
        else resolve();
      };
    });
    this.#worker.on('message', (message: FromWorker) => this.#onMessage(message));
    this.#worker.on('error', (error) => (this.#thrown = error));
    this.#exited = new Promise((resolve) => this.#worker.once('exit', (code) => resolve(this.#onExit(code))));
  }

  #whenReady: ((error?: EdgeInferError) => void) | undefined;

  get alive(): boolean {
    return this.#end === undefined;
  }

  /** Runs the script's `run` on one request, within the run deadline. */
  run(input: ScriptInput): Promise<unknown> {
    if (this.#end) return Promise.reject(this.#end);
    const id = ++this.#lastId;
    const { modelName, limits } = this.#options;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.#stop(new EdgeInferError('EI_SCRIPT_TIMEOUT', [modelName, 'run()', limits.runTimeoutMs / 1000, '--script-run-timeout'])),
        limits.runTimeoutMs,
      );
      this.#pending.set(id, { resolve, reject, timer });
      // The request's image is copied once into a buffer of its own and moved, not copied again.
      const message: ToWorker = { type: 'run', id, input: input.kind === 'image' ? { ...input, image: new Uint8Array(input.image) } : input };
      this.#worker.postMessage(message, input.kind === 'image' && message.input.kind === 'image' ? [message.input.image.buffer as ArrayBuffer] : []);
    });
  }

  /** Ends the worker (the version is released, or its load failed); resolves once it has. */
  async stop(): Promise<void> {
    this.#end ??= new EdgeInferError('EI_SCRIPT_CRASHED', [this.#options.modelName, 'on purpose', 'its version was released']);
    await this.#worker.terminate();
    await this.#exited;
  }

  /** Ends the worker for a reason of ours (a deadline); its 'exit' fails what is pending with it. */
  #stop(reason: EdgeInferError): void {
    if (this.#end) return;
    this.#end = reason;
    this.#announce(reason, undefined);
    void this.#worker.terminate();
  }

  #announce(error: EdgeInferError, cause: unknown): void {
    if (this.#ready) this.#options.onEnd?.(error, cause);
  }

  #onMessage(message: FromWorker): void {
    switch (message.type) {
      case 'ready':
        this.#ready = true;
        this.#whenReady?.();
        return;
      case 'load-failed':
        this.#end = this.#scriptError(message.step, fromWire(message.error));
        this.#whenReady?.(this.#end);
        void this.#worker.terminate();
        return;
      case 'result': {
        const pending = this.#pending.get(message.id);
        if (!pending) return;
        this.#pending.delete(message.id);
        clearTimeout(pending.timer);
        if (message.ok) pending.resolve(message.value);
        else pending.reject(this.#scriptError('run', fromWire(message.error)));
        return;
      }
      case 'call':
        void this.#serve(message.method, message.args).then((outcome) => this.#answer(message.id, outcome));
        return;
      case 'rejection':
        this.#options.log.error(
          { err: fromWire(message.error), code: 'EI_SCRIPT_FAILED' },
          'an unhandled promise rejection in the entry script: logged, and the script goes on',
        );
    }
  }

  /** Our own coded errors pass through (a ctx call's, or one a script threw on purpose); anything else is wrapped. */
  #scriptError(step: string, error: Error): EdgeInferError {
    return isEdgeInferError(error) ? error : new EdgeInferError('EI_SCRIPT_FAILED', [this.#options.modelName, step, error.message], error);
  }

  async #serve(method: ContextMethod, args: unknown[]): Promise<Outcome> {
    const { services } = this.#options;
    const feeds = (value: unknown) => value as Feeds;
    const names = (value: unknown) => value as readonly string[] | undefined;
    try {
      switch (method) {
        case 'model.run':
          if (!services.model) throw new Error('the package has no model; ctx.model is undefined');
          return { ok: true, value: plainTensors(await services.model.run(feeds(args[0]), names(args[1]))) };
        case 'createSession': {
          const session = await services.createSession(String(args[0]));
          const id = ++this.#lastSession;
          this.#sessions.set(id, session);
          if (this.#end) await this.#releaseSessions();
          return { ok: true, value: { id, file: session.file, signature: session.signature } };
        }
        case 'session.run':
          return { ok: true, value: plainTensors(await this.#session(args[0]).run(feeds(args[1]), names(args[2]))) };
        case 'session.release': {
          const session = this.#session(args[0]);
          this.#sessions.delete(Number(args[0]));
          await session.release();
          return { ok: true, value: undefined };
        }
        case 'imageToTensor': {
          const image = args[0] as Uint8Array;
          return { ok: true, value: plainTensors(await services.imageToTensor(Buffer.from(image.buffer, image.byteOffset, image.byteLength))) };
        }
      }
    } catch (error) {
      return { ok: false, error: toWire(error) };
    }
  }

  #session(id: unknown): EngineModel {
    const session = this.#sessions.get(Number(id));
    if (!session) throw new Error(`session ${String(id)} was released`);
    return session;
  }

  /** Tensors we made for the script are moved; anything else is copied. */
  #answer(id: number, outcome: Outcome): void {
    if (this.#end) return;
    const message: ToWorker = { type: 'answer', id, ...outcome };
    const tensors = outcome.ok && isTensorRecord(outcome.value) ? outcome.value : {};
    try {
      this.#worker.postMessage(message, transferablesOf(tensors));
    } catch (error) {
      this.#worker.postMessage({ type: 'answer', id, ok: false, error: toWire(new Error(`the answer cannot be sent to the script (${messageOf(error)})`)) } satisfies ToWorker);
    }
  }

  #onExit(code: number): void {
    const { modelName, limits } = this.#options;
    if (!this.#end) {
      const phase = !this.#ready ? 'in import and init()' : this.#pending.size > 0 ? 'while it ran a request' : 'while idle';
      const thrown = this.#thrown;
      this.#end =
        (thrown as { code?: string } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new EdgeInferError('EI_SCRIPT_OUT_OF_MEMORY', [modelName, limits.memoryMb], thrown)
          : thrown !== undefined
            ? new EdgeInferError('EI_SCRIPT_CRASHED', [modelName, phase, `it threw where nothing caught it: ${messageOf(thrown)}`], thrown)
            : new EdgeInferError('EI_SCRIPT_CRASHED', [modelName, phase, `it called process.exit(${code})`]);
      this.#announce(this.#end, thrown);
    }
    const end = this.#end;
    this.#whenReady?.(end);
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(end);
    }
    this.#pending.clear();
    void this.#releaseSessions();
  }

  async #releaseSessions(): Promise<void> {
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    for (const session of sessions) {
      await session.release().catch((error: unknown) => this.#options.log.warn({ err: error }, 'releasing an entry script session failed'));
    }
  }
}

function isTensorRecord(value: unknown): value is Record<string, { type: string; dims: number[]; data: Feeds[string]['data'] }> {
  return typeof value === 'object' && value !== null && Object.values(value).every((t) => typeof t === 'object' && t !== null && ArrayBuffer.isView((t as { data?: unknown }).data));
}
