/**
 * Finding 5 of issue 12: an entry script runs in a worker thread of its own, so that nothing it does takes the
 * module down. Scripts that hang or spin in init, spin in run, call process.exit in init or run, throw from a
 * timer, or outgrow their heap are deployed over a good version of the same slot: each new version fails with a
 * code that says why, the module answers GET / while it happens, and the good version keeps scoring.
 * A version that is already serving survives a request that crashes or hangs its script, and ctx works in the
 * worker as it did in the main thread.
 */
import { setTimeout } from 'node:timers/promises';
import test from 'ava';
import { parseSettings, type Settings } from '../src/config/settings.js';
import { isEdgeInferError } from '../src/errors.js';
import { ocrClassifierPath, postJson } from './support/fixtures.js';
import { makePackageFolder } from './support/packages.js';
import { startService, type TestService } from './support/service.js';

interface StatusBody {
  models: Record<string, { status: string; version: string | null; error: { code: string; message: string } | null }>;
}

interface ErrorBody {
  error: { code: string; message: string };
}

let service: TestService;
test.before(async () => {
  // Short deadlines and a small heap, so that each case ends within seconds; the defaults are 60 s, 30 s, 256 MiB.
  service = await startService({ models: [], args: ['--script-load-timeout', '5', '--script-run-timeout', '2', '--script-memory', '64MiB'] });
  const good = await makePackageFolder({
    write: { 'score.mjs': 'export function run(input) { return { version: "good", echo: input }; }', 'edge-infer.json': { inputSample: { n: 0 } } },
  });
  if (!(await service.deploy({ name: 'iso', version: 'good', uri: good }))) throw new Error('the good version did not load');
});
test.after.always(() => service?.close());

async function status(): Promise<StatusBody> {
  return (await (await fetch(`${service.url}/status`)).json()) as StatusBody;
}

/** Scripts whose every run waits for warm-up: the failure happens while the new version loads. */
const cases: Array<{ name: string; script: string; code: string; message: RegExp }> = [
  {
    name: 'an init that never resolves',
    script: 'export function init() { return new Promise(() => {}); }\nexport function run() { return {}; }',
    code: 'EI_SCRIPT_TIMEOUT',
    message: /import and init\(\) within 5 s \(setting --script-load-timeout\)/,
  },
  {
    name: 'an endless loop in init',
    script: 'export function init() { for (;;) {} }\nexport function run() { return {}; }',
    code: 'EI_SCRIPT_TIMEOUT',
    message: /import and init\(\) within 5 s/,
  },
  {
    name: 'an endless loop in run',
    script: 'export function run() { for (;;) {} }',
    code: 'EI_SCRIPT_TIMEOUT',
    message: /run\(\) within 2 s \(setting --script-run-timeout\)/,
  },
  {
    name: 'process.exit() in init',
    script: 'export function init() { process.exit(3); }\nexport function run() { return {}; }',
    code: 'EI_SCRIPT_CRASHED',
    message: /in import and init\(\): it called process\.exit\(3\)/,
  },
  {
    name: 'process.exit() in run',
    script: 'export function run() { process.exit(4); }',
    code: 'EI_SCRIPT_CRASHED',
    message: /while it ran a request: it called process\.exit\(4\)/,
  },
  {
    name: 'a throw from a timer after init',
    script: `export function init() { setTimeout(() => { throw new Error('late boom'); }, 50); }
             export function run() { return new Promise((resolve) => setTimeout(resolve, 1500, {})); }`,
    code: 'EI_SCRIPT_CRASHED',
    message: /it threw where nothing caught it: late boom/,
  },
  {
    name: 'a heap that grows without end',
    script: 'const kept = [];\nexport function init() { for (;;) kept.push({ n: kept.length, s: String(kept.length) }); }\nexport function run() { return {}; }',
    code: 'EI_SCRIPT_OUT_OF_MEMORY',
    message: /more than its 64 MiB of JavaScript heap \(setting --script-memory\)/,
  },
];

for (const { name, script, code, message } of cases) {
  test.serial(`${name}: the new version fails with ${code}, and the module and the previous version go on`, async (t) => {
    const folder = await makePackageFolder({ write: { 'score.mjs': script, 'edge-infer.json': { inputSample: { n: 1 } } } });
    const deploying = service.deploy({ name: 'iso', version: 'bad', uri: folder });
    // While the bad version loads (and spins, or waits for its deadline), the module answers.
    await Promise.race([deploying, setTimeout(1000)]);
    const home = await fetch(`${service.url}/`);
    t.is(home.status, 200);
    t.deepEqual(await (await postJson(`${service.url}/models/iso/score`, { n: 2 })).json(), { version: 'good', echo: { n: 2 } });

    t.false(await deploying);
    const slot = (await status()).models.iso!;
    t.is(slot.status, 'failed');
    t.is(slot.version, 'good');
    t.is(slot.error?.code, code, slot.error?.message);
    t.regex(slot.error!.message, message);
    t.is((await fetch(`${service.url}/`)).status, 200);
    t.deepEqual(await (await postJson(`${service.url}/models/iso/score`, { n: 3 })).json(), { version: 'good', echo: { n: 3 } });
  });
}

test.serial('a serving version whose script exits or spins on one request fails that request with a code, then starts its script again', async (t) => {
  const script = `const worker = Math.random();
    export function run(input) {
      if (input.exit) process.exit(5);
      if (input.spin) for (;;) {}
      return { worker };
    }`;
  const folder = await makePackageFolder({ write: { 'score.mjs': script } });
  t.true(await service.deploy({ name: 'served', version: '1', uri: folder }));
  const score = async (body: object) => postJson(`${service.url}/models/served/score`, body);
  const first = ((await (await score({})).json()) as { worker: number }).worker;

  const exited = await score({ exit: true });
  t.is(exited.status, 500);
  t.is(((await exited.json()) as ErrorBody).error.code, 'EI_SCRIPT_CRASHED');
  const second = ((await (await score({})).json()) as { worker: number }).worker;
  t.not(second, first, 'a new worker, with its own module state, answers');

  const spun = await score({ spin: true });
  t.is(spun.status, 500);
  const timedOut = (await spun.json()) as ErrorBody;
  t.is(timedOut.error.code, 'EI_SCRIPT_TIMEOUT');
  t.regex(timedOut.error.message, /run\(\) within 2 s/);
  t.is((await score({})).status, 200);

  const slot = (await status()).models.served!;
  t.is(slot.status, 'active');
  t.is(slot.version, '1');
});

test.serial('ctx works in the worker: the model, a session of its own, the postprocessor at once, settings; its arrays stay its own', async (t) => {
  const script = `let second;
    export async function init(ctx) { second = await ctx.createSession(ctx.dir + '/second.onnx'); }
    export async function run(input, ctx) {
      const feeds = { x: { type: 'float32', dims: [1, 3, 48, 192], data: new Float32Array(3 * 48 * 192).fill(0.5) } };
      const first = await ctx.model.run(feeds);
      const other = await second.run(feeds);
      if (input.release) await second.release();
      return {
        same: Array.from(Object.values(first)[0].data).join() === Array.from(Object.values(other)[0].data).join(),
        labels: ctx.postprocess(first).predictions.map((p) => p.label).sort(),
        inputs: second.signature.inputs.map((i) => i.name),
        width: ctx.settings.image.width,
        kept: feeds.x.data.length,
      };
    }`;
  const folder = await makePackageFolder({
    copy: { 'cls.onnx': ocrClassifierPath, 'second.onnx': ocrClassifierPath },
    write: {
      'score.mjs': script,
      'edge-infer.json': { model: 'cls.onnx', image: { width: 192, height: 48, layout: 'NCHW' }, postprocess: { kind: 'classification', labels: ['up', 'down'], topK: 2 } },
    },
  });
  t.true(await service.deploy({ name: 'context', version: '1', uri: folder }));
  const score = async (body: object) => postJson(`${service.url}/models/context/score`, body);
  const expected = { same: true, labels: ['down', 'up'], inputs: ['x'], width: 192, kept: 3 * 48 * 192 };
  t.deepEqual(await (await score({})).json(), expected);
  t.deepEqual(await (await score({ release: true })).json(), expected);
  const released = await score({});
  t.is(released.status, 500);
  const body = (await released.json()) as ErrorBody;
  t.is(body.error.code, 'EI_SCRIPT_FAILED');
  t.regex(body.error.message, /released/);
});

test('the script limits are settings: defaults, flags, variables, and a refused value names its flag', (t) => {
  const limits = (argv: string[], env: NodeJS.ProcessEnv = {}) => (parseSettings(argv, env) as Settings).scriptLimits;
  t.deepEqual(limits([]), { loadTimeoutMs: 60_000, runTimeoutMs: 30_000, memoryMb: 256 });
  t.deepEqual(limits(['--script-load-timeout', '5', '--script-run-timeout', '2', '--script-memory', '1GiB']), { loadTimeoutMs: 5000, runTimeoutMs: 2000, memoryMb: 1024 });
  t.deepEqual(limits([], { EDGE_INFER_SCRIPT_RUN_TIMEOUT: '90', EDGE_INFER_SCRIPT_MEMORY: '64MiB' }), { loadTimeoutMs: 60_000, runTimeoutMs: 90_000, memoryMb: 64 });
  for (const [flag, value] of [['--script-run-timeout', '0'], ['--script-load-timeout', 'soon'], ['--script-memory', '8MiB']] as const) {
    const error = t.throws(() => parseSettings([flag, value], {}));
    t.true(isEdgeInferError(error) && error.code === 'EI_CONFIG_INVALID' && error.message.includes(flag), String(error));
  }
});
