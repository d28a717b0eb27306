/**
 * What an entry script's worker thread costs (issue 12, finding 5): the same scripts run in this process, as they
 * did before scripts had workers, and in a worker as the module runs them now. A trivial script measures the
 * hand-off alone; one that runs the bundled model on a 768 KiB input through `ctx.model` measures it beside an
 * inference, and one that creates its own ONNX session inside the worker is the alternative we did not choose.
 * Runs on its own too: `node dist/bench/script-worker.js`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pino from 'pino';
import { DEFAULT_SCRIPT_LIMITS, loadEntryScript, type EntryScript, type ScriptInput } from '../src/engine/entry-script.js';
import { loadOnnxModel } from '../src/engine/onnx-session.js';
import type { EngineModel } from '../src/engine/target.js';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { sequentialLatency, type Latency } from './measure.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const fmt = (n: number, digits = 2) => n.toFixed(digits);
const require = createRequire(import.meta.url);

const SCRIPTS = {
  trivial: 'export function run(input) { return { ok: true, n: input.n }; }',
  // A new input per request, as a script that preprocesses its own would make; the outputs come back moved.
  viaContext: `const dims = [1, 256, 256, 3];
    export async function run(input, ctx) {
      const outputs = await ctx.model.run({ [ctx.model.signature.inputs[0].name]: { type: 'float32', dims, data: new Float32Array(196608) } });
      return { outputs: Object.keys(outputs).length };
    }`,
  ownSession: `import ort from ${JSON.stringify(pathToFileURL(require.resolve('onnxruntime-node')).href)};
    ort.env.logLevel = 'fatal';
    const dims = [1, 256, 256, 3];
    let session;
    export async function init(ctx) {
      session = await ort.InferenceSession.create(${JSON.stringify(BUNDLED_MODEL.uri)}, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', logSeverityLevel: 3 });
    }
    export async function run() {
      const outputs = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', new Float32Array(196608), dims) });
      return { outputs: Object.keys(outputs).length };
    }`,
};

interface ScriptModule {
  init?: (ctx: unknown) => unknown;
  run: (input: unknown, ctx: unknown) => unknown;
}

/** The script imported here and called directly, with the ctx it had in the main thread. */
async function inProcess(file: string, model: EngineModel, body: unknown): Promise<() => Promise<unknown>> {
  const script = (await import(pathToFileURL(file).href)) as ScriptModule;
  const ctx = { model };
  await script.init?.(ctx);
  return async () => script.run(body, ctx);
}

async function inWorker(file: string, dir: string, model: EngineModel): Promise<EntryScript> {
  return loadEntryScript({
    modelName: 'bench',
    version: '1',
    file,
    dir,
    settings: {},
    limits: DEFAULT_SCRIPT_LIMITS,
    log: pino({ level: 'silent' }),
    services: { model, createSession: (f) => loadOnnxModel(f), imageToTensor: () => Promise.reject(new Error('not in this bench')) },
  });
}

/** A model that answers at once with outputs of BlazeFace's sizes: what is left is the hand-off. */
function instantModel(model: EngineModel): EngineModel {
  const outputs = model.signature.outputs.map((o) => ({ name: o.name, size: o.shape.reduce<number>((a, d) => a * (typeof d === 'number' && d > 0 ? d : 1), 1) }));
  return {
    ...model,
    run: async () => Object.fromEntries(outputs.map(({ name, size }) => [name, { type: 'float32', dims: [size], data: new Float32Array(size) }])),
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Variants measured in turn, round after round, so that a busy spell of a shared machine hits them alike. */
async function medianOfRounds(variants: Record<string, () => Promise<unknown>>): Promise<Record<string, Latency>> {
  const seen: Record<string, Latency[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, operation] of Object.entries(variants)) seen[name]!.push(await sequentialLatency(operation, SECONDS));
  }
  return Object.fromEntries(
    Object.entries(seen).map(([name, runs]) => [name, { p50: median(runs.map((r) => r.p50)), p99: median(runs.map((r) => r.p99)), rate: median(runs.map((r) => r.rate)) }]),
  );
}

export async function scriptWorkerBench(): Promise<string[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-bench-script-'));
  const model = await loadOnnxModel(BUNDLED_MODEL.uri);
  const body = { n: 1 };
  const input: ScriptInput = { kind: 'json', body };
  const workers: EntryScript[] = [];
  const started = async (file: string, engineModel: EngineModel) => {
    const worker = await inWorker(file, dir, engineModel);
    workers.push(worker);
    return () => worker.run(input);
  };
  try {
    for (const [name, text] of Object.entries(SCRIPTS)) await writeFile(path.join(dir, `${name}.mjs`), text);
    const file = (name: keyof typeof SCRIPTS) => path.join(dir, `${name}.mjs`);
    const instant = instantModel(model);
    process.stderr.write('script-worker: measuring\n');
    const m = await medianOfRounds({
      trivialHere: await inProcess(file('trivial'), model, body),
      trivialThere: await started(file('trivial'), model),
      handOffHere: await inProcess(file('viaContext'), instant, body),
      handOffThere: await started(file('viaContext'), instant),
      modelHere: await inProcess(file('viaContext'), model, body),
      modelThere: await started(file('viaContext'), model),
      ownSession: await started(file('ownSession'), model),
    });
    const row = (name: string, l: Latency) => `| ${name} | ${fmt(l.p50, 3)} | ${fmt(l.p99, 3)} | ${fmt(l.rate, 0)} |`;
    const cost = (a: Latency, b: Latency) => `${fmt((b.p50 - a.p50) * 1000, 0)} µs`;
    return [
      '## Entry scripts in worker threads',
      '',
      `One request at a time, ${SECONDS} s per figure, median of ${ROUNDS} rounds taken in turn. "ctx.model.run" rows make a new 768 KiB input per request; the instant model answers BlazeFace's outputs without inferring, so its rows show the hand-off alone.`,
      '',
      '| script | p50 ms | p99 ms | req/s |',
      '| --- | ---: | ---: | ---: |',
      row('trivial, in process (before)', m.trivialHere!),
      row('trivial, in its worker (now)', m.trivialThere!),
      row('ctx.model.run, instant model, in process', m.handOffHere!),
      row('ctx.model.run, instant model, in its worker', m.handOffThere!),
      row('ctx.model.run, BlazeFace 256, in process (before)', m.modelHere!),
      row('ctx.model.run, BlazeFace 256, in its worker (now: session in the main thread)', m.modelThere!),
      row('BlazeFace 256 on a session the script made in its worker (not chosen)', m.ownSession!),
      '',
      `Hand-off cost per request (p50, worker − in process): a trivial script ${cost(m.trivialHere!, m.trivialThere!)}; a request that moves a 768 KiB input to the model and its outputs back ${cost(m.handOffHere!, m.handOffThere!)}.`,
      '',
    ];
  } finally {
    for (const worker of workers) await worker.stop();
    await model.release();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(`${(await scriptWorkerBench()).join('\n')}\n`);
