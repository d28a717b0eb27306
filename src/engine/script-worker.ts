/**
 * The worker thread one loaded version's entry script runs in (entry-script.ts starts it). It imports
 * `score.mjs`, runs `init(ctx)` once and `run(input, ctx)` per request. `ctx` is the same as it was in the main
 * thread: plain data and the manifest's postprocessor here, and the model, sessions and image preprocessing called
 * in the main thread by message (the sessions stay with the version's target; tensors the main thread sends are
 * moved, not copied).
 *
 * Whatever the script does ends here at worst: `process.exit()` ends this thread, an exception nobody caught
 * ends it too (the main thread gets it as the worker's 'error'), and a rejection nobody handled is reported and
 * the script goes on, as the module's own last-resort handler does.
 */
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import { EdgeInferError } from '../errors.js';
import { createLogger } from '../log.js';
import { plainTensors, fromWire, toWire, type ContextMethod, type FromWorker, type ScriptInput, type ScriptWorkerData, type ToWorker } from './script-worker-protocol.js';
import { createPostprocessor } from '../pipeline/postprocess/index.js';
import { runPostprocessor } from './script-worker-postprocess.js';
import type { Feeds, Outputs } from './tensor.js';

interface EntryModule {
  init?: (ctx: unknown) => unknown;
  run?: (input: unknown, ctx: unknown) => unknown;
}

const data = workerData as ScriptWorkerData;
const port = parentPort!;
const post = (message: FromWorker) => port.postMessage(message);

process.on('unhandledRejection', (reason) => post({ type: 'rejection', error: toWire(reason) }));

const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
let lastCall = 0;

function call(method: ContextMethod, args: unknown[]): Promise<unknown> {
  const id = ++lastCall;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    post({ type: 'call', id, method, args });
  });
}

/** `ctx.postprocess`: the version's postprocessor, built again here so that it answers at once, as it always has. */
async function postprocessOf({ postprocessor: plan, model, modelName, dir, settings }: ScriptWorkerData): Promise<((outputs: Outputs) => unknown) | undefined> {
  if (!plan || !model) return undefined;
  const context = { modelName, signature: model.signature, packageDir: dir, ...(plan.inputSize ? { inputSize: plan.inputSize } : {}) };
  const postprocessor = await createPostprocessor(settings.postprocess, context);
  return (outputs) => runPostprocessor(postprocessor, modelName, outputs, plan.geometry);
}

// A script may hand in ONNX Runtime's own Tensor objects: only their plain fields cross (plainTensors).
const ctx = {
  dir: data.dir,
  settings: data.settings,
  log: createLogger(data.logLevel).child({ model: data.modelName, version: data.version, script: true }),
  model: data.model && {
    file: data.model.file,
    signature: data.model.signature,
    run: (feeds: Feeds, outputNames?: readonly string[]) => call('model.run', [plainTensors(feeds), outputNames]),
  },
  createSession: async (file: string) => {
    const { id, ...session } = (await call('createSession', [file])) as { id: number; file: string; signature: unknown };
    return {
      ...session,
      run: (feeds: Feeds, outputNames?: readonly string[]) => call('session.run', [id, plainTensors(feeds), outputNames]),
      release: () => call('session.release', [id]),
    };
  },
  imageToTensor: (image: Uint8Array) => call('imageToTensor', [image]),
  postprocess: await postprocessOf(data),
};

/** Imports the script and runs its `init`; a failure is reported as a step's error, and the main thread ends the worker. */
async function load(): Promise<EntryModule | undefined> {
  let script: EntryModule;
  try {
    script = (await import(pathToFileURL(data.file).href)) as EntryModule;
  } catch (error) {
    post({ type: 'load-failed', step: 'import', error: toWire(error) });
    return undefined;
  }
  if (typeof script.run !== 'function') {
    const invalid = new EdgeInferError('EI_PACKAGE_INVALID', [data.file, 'score.mjs must export an async function run(input, ctx)']);
    post({ type: 'load-failed', step: 'import', error: toWire(invalid) });
    return undefined;
  }
  try {
    await script.init?.(ctx);
  } catch (error) {
    post({ type: 'load-failed', step: 'init', error: toWire(error) });
    return undefined;
  }
  return script;
}

/** A message arrives as a Uint8Array; the script has always been given a Buffer. */
function inputOf(input: ScriptInput): unknown {
  if (input.kind === 'json') return input.body;
  return { image: Buffer.from(input.image.buffer, input.image.byteOffset, input.image.byteLength), contentType: input.contentType };
}

async function answer(run: NonNullable<EntryModule['run']>, id: number, input: ScriptInput): Promise<void> {
  let value: unknown;
  try {
    value = await run(inputOf(input), ctx);
  } catch (error) {
    post({ type: 'result', id, ok: false, error: toWire(error) });
    return;
  }
  try {
    post({ type: 'result', id, ok: true, value });
  } catch (error) {
    // A function or a symbol in the result cannot cross; it could not have been sent as JSON either.
    post({ type: 'result', id, ok: false, error: toWire(new Error(`its result cannot be sent back (${(error as Error).message})`)) });
  }
}

// Answers to ctx calls arrive while init runs, so the port listens before the script is loaded.
let script: EntryModule | undefined;
port.on('message', (message: ToWorker) => {
  if (message.type === 'run') {
    void answer(script!.run!, message.id, message.input);
    return;
  }
  const pending = waiting.get(message.id);
  waiting.delete(message.id);
  if (message.ok) pending?.resolve(message.value);
  else pending?.reject(fromWire(message.error));
});

script = await load();
if (script) post({ type: 'ready' });
