/**
 * Dynamic batching through the real service, with PaddleOCR's text-direction classifier (its batch, height and
 * width dimensions are free): results through a batch are the results of the same requests run one by one, for
 * REST, OIP (JSON and binary) and edgeHub messages (the module's intake, and the real program behind the test
 * edgeHub) stacked into the same batches; a bad request is refused alone; a swap under batched load fails nothing;
 * a lone request is answered without waiting for company that never comes, and a preferred size without waiting
 * out the delay; on an accelerator a batch is one inference, and a failed run fails only its batch; a model with a
 * fixed first dimension, or settings that contradict themselves, are refused clearly. That batches really formed
 * is read from /metrics (edge_infer_batch_size).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { createLogger } from '../src/log.js';
import { InputScorer } from '../src/hub/messages.js';
import { batchingTarget } from '../src/engine/batcher.js';
import { cpuTarget } from '../src/engine/local-targets.js';
import { identityModel } from '../src/engine/probe-model.js';
import type { EngineModel, Target } from '../src/engine/target.js';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import type { ModelSpec } from '../src/models/deploy.js';
import type { OutputMessage } from '../src/sources/result-message.js';
import { EdgeHub } from './support/edgehub.js';
import { ocrClassifierPath, postJson } from './support/fixtures.js';
import { makeCertificate } from './support/network.js';
import { BinaryOipServer } from './support/oip-server-binary.js';
import { startProgram } from './support/program.js';
import { startService, type TestService } from './support/service.js';
import { until } from './support/until.js';

const SHAPE = [1, 3, 48, 192];
const PER_REQUEST = SHAPE.reduce((a, b) => a * b);
const OUTPUT = 'softmax_0.tmp_0';

/**
 * `cls` batches up to 8 and waits long for company, so that 8 requests sent together share batches even on a
 * loaded machine; `plain` is the same model unbatched, the reference; `lone` waits for 32 that never come.
 */
const cls = (version: string, maxBatch = 8): ModelSpec => ({ name: 'cls', version, uri: ocrClassifierPath, batching: { maxBatch, maxDelayMicros: 500_000 } });
const plain: ModelSpec = { name: 'plain', version: '1', uri: ocrClassifierPath };
const lone: ModelSpec = { name: 'lone', version: '1', uri: ocrClassifierPath, batching: { maxBatch: 32, maxDelayMicros: 300_000, preferredBatchSizes: '16,32' } };

let service: TestService;
let accelerator: BinaryOipServer;
test.before(async () => {
  accelerator = await BinaryOipServer.start({ cls: ocrClassifierPath });
  service = await startService({ models: [cls('a'), plain, lone] });
});
test.after.always(async () => {
  await service?.close();
  await accelerator?.close();
});

/** The desired state with these slots (a slot spec's placement and settings inline, as a twin gives them). */
function desired(...specs: ModelSpec[]) {
  return { models: Object.fromEntries(specs.map(({ name, settings, ...slot }) => [name, { ...slot, ...settings }])) };
}

/** A distinct input per seed, in steps of 1/64 so that JSON carries every value exactly. */
function input(seed: number, count = PER_REQUEST): number[] {
  const data: number[] = [];
  let state = seed;
  for (let i = 0; i < count; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    data.push(Math.round((state / 2 ** 31) * 128 - 64) / 64);
  }
  return data;
}

function nested(data: number[], shape = SHAPE): unknown {
  let offset = 0;
  const build = (depth: number): unknown =>
    depth === shape.length - 1 ? data.slice(offset, (offset += shape[depth]!)) : Array.from({ length: shape[depth]! }, () => build(depth + 1));
  return build(0);
}

type Call = (model: string, data: number[]) => Promise<{ status: number; scores?: number[]; version?: string; body: unknown }>;

/** POST /models/{m}/score with the Azure ML JSON body. */
const rest: Call = async (model, data) => {
  const response = await postJson(`${service.url}/models/${model}/score`, { data: nested(data) });
  const body = (await response.json()) as { outputs?: Record<string, { data: number[] }> };
  return { status: response.status, scores: body.outputs?.[OUTPUT]?.data, body };
};

function oipAnswer(response: Response, body: { model_version?: string; outputs?: Array<{ name: string; data: number[] }> }) {
  return { status: response.status, scores: body.outputs?.find((o) => o.name === OUTPUT)?.data, version: body.model_version, body };
}

/** OIP infer with a JSON tensor. */
const oipJson: Call = async (model, data) => {
  const response = await postJson(`${service.url}/v2/models/${model}/infer`, { inputs: [{ name: 'x', shape: SHAPE, datatype: 'FP32', data }] });
  return oipAnswer(response, (await response.json()) as never);
};

/** OIP infer with the binary tensor data extension (a JSON answer), at `base`. */
async function oipBinaryAt(base: string, model: string, data: number[], shape = SHAPE): ReturnType<Call> {
  const bytes = Buffer.from(new Float32Array(data).buffer);
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape, datatype: 'FP32', parameters: { binary_data_size: bytes.length } }] }));
  const response = await fetch(`${base}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    body: new Uint8Array(Buffer.concat([header, bytes])),
  });
  return oipAnswer(response, (await response.json()) as never);
}

const oipBinary: Call = (model, data) => oipBinaryAt(service.url, model, data);

/** An edgeHub input message through the module's own intake (InputScorer), its answer as sent on `results`. */
const message: Call = (model, data) =>
  new Promise((resolve, reject) => {
    const scorer = new InputScorer({
      registry: service.registry,
      defaultModel: () => undefined,
      outputName: () => 'results',
      send: async (sent: OutputMessage) => {
        const body = JSON.parse(sent.body) as { result?: { outputs: Record<string, { data: number[] }> } };
        resolve({ status: sent.output === 'results' ? 200 : 500, scores: body.result?.outputs[OUTPUT]?.data, body });
      },
      complete: async () => undefined,
      log: createLogger('silent'),
    });
    scorer.take('score', { data: Buffer.from(JSON.stringify({ data: nested(data) })), messageId: 'm', contentType: 'application/json', properties: { getValue: (key) => (key === 'model' ? model : undefined) } });
    void scorer.drain().catch(reject);
  });

/** Runs per model slot, and the rows they held, as /metrics counts them. */
async function batches(model: string, base = service.url): Promise<{ runs: number; rows: number; single: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const figure = (pattern: string) => Number(new RegExp(`^${pattern} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    runs: figure(`edge_infer_batch_size_count\\{model="${model}"\\}`),
    rows: figure(`edge_infer_batch_size_sum\\{model="${model}"\\}`),
    single: figure(`edge_infer_batch_size_bucket\\{le="1",model="${model}"\\}`),
  };
}

/** The reference: each input alone on the unbatched slot, one after another. */
async function oneByOne(inputs: number[][]): Promise<number[][]> {
  const scores: number[][] = [];
  for (const data of inputs) {
    const answer = await oipBinary('plain', data);
    if (answer.status !== 200 || !answer.scores) throw new Error(`the reference run answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    scores.push(answer.scores);
  }
  return scores;
}

test.serial('REST, OIP JSON, OIP binary and messages sent together share batches, and each gets what it gets alone, every element', async (t) => {
  const calls = [rest, oipJson, oipBinary, message, rest, oipJson, oipBinary, message];
  const inputs = calls.map((_, i) => input(i + 1));
  const reference = await oneByOne(inputs);
  const before = await batches('cls');
  const answers = await Promise.all(calls.map((call, i) => call('cls', inputs[i]!)));
  const after = await batches('cls');
  answers.forEach((answer, i) => {
    t.is(answer.status, 200, JSON.stringify(answer.body));
    t.deepEqual(answer.scores, reference[i], `request ${i} (${calls[i]!.name}) differs from the same input run alone`);
  });
  // Eight requests' rows, in fewer runs than requests: some were stacked.
  t.is(after.rows - before.rows, 8);
  t.true(after.runs - before.runs < 8, `8 requests ran as ${after.runs - before.runs} batches`);
  // The reference slot does not batch: it has no batch figures at all.
  t.is((await batches('plain')).runs, 0);
});

test.serial('requests of several rows stack with others and each gets its own rows back', async (t) => {
  const rows = [2, 1, 3, 2];
  const shapeOf = (n: number) => [n, ...SHAPE.slice(1)];
  const inputs = rows.map((n, i) => input(i + 700, n * PER_REQUEST));
  const reference: number[][] = [];
  for (const [i, data] of inputs.entries()) reference.push((await oipBinaryAt(service.url, 'plain', data, shapeOf(rows[i]!))).scores!);
  const before = await batches('cls');
  const answers = await Promise.all(inputs.map((data, i) => oipBinaryAt(service.url, 'cls', data, shapeOf(rows[i]!))));
  answers.forEach((answer, i) => t.deepEqual(answer.scores, reference[i], `the request of ${rows[i]} rows`));
  const after = await batches('cls');
  t.is(after.rows - before.rows, 8);
  t.true(after.runs - before.runs < 4, `4 requests ran as ${after.runs - before.runs} batches`);
});

test.serial('a bad request among good ones is refused alone, before it joins a batch; the others are answered', async (t) => {
  const inputs = [1, 2, 3, 4, 5, 6, 7].map((seed) => input(seed + 100));
  const reference = await oneByOne(inputs);
  const before = await batches('cls');
  // A tensor of the wrong rank: the model would fail on it, and with it every request stacked beside it.
  const bad = fetch(`${service.url}/v2/models/cls/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'x', shape: [3, 48, 192], datatype: 'FP32', data: input(9).slice(0, 3 * 48 * 192) }] }),
  });
  const [refused, ...answers] = await Promise.all([bad, ...inputs.map((data) => oipBinary('cls', data))]);
  t.is(refused.status, 422);
  t.regex(((await refused.json()) as { error: string }).error, /Input "x" must have shape/);
  answers.forEach((answer, i) => t.deepEqual(answer.scores, reference[i]));
  const after = await batches('cls');
  t.is(after.rows - before.rows, 7, 'the refused request never joined a batch');
  t.true(after.runs - before.runs < 7);
});

test.serial('a swap during batched load fails nothing: every answer is right and comes from one version or the other', async (t) => {
  const inputs = [1, 2, 3, 4].map((seed) => input(seed + 200));
  const reference = await oneByOne(inputs);
  const before = await batches('cls');
  let swapping = true;
  const versions = new Set<string>();
  const failures: string[] = [];
  let answered = 0;
  const client = async (k: number) => {
    for (let i = k; swapping; i++) {
      const answer = await oipBinary('cls', inputs[i % inputs.length]!);
      answered++;
      if (answer.status !== 200) failures.push(`${answer.status} ${JSON.stringify(answer.body)}`);
      else if (JSON.stringify(answer.scores) !== JSON.stringify(reference[i % inputs.length])) failures.push(`wrong scores from version ${answer.version}`);
      else versions.add(answer.version!);
    }
  };
  const clients = Array.from({ length: 12 }, (_, k) => client(k));
  // Version c batches at most 4: the slot's admission shrinks under load, and grows again with d.
  for (const version of ['b', 'c', 'd', 'a']) {
    service.reconciler.apply(desired(cls(version, version === 'c' ? 4 : 8), plain, lone));
    await service.reconciler.settled();
    t.is(service.registry.active('cls')?.version, version);
  }
  swapping = false;
  await Promise.all(clients);
  t.deepEqual(failures, []);
  t.true(versions.size >= 2, `answers came from ${[...versions].join(', ')}`);
  const after = await batches('cls');
  t.true(after.rows - after.runs > before.rows - before.runs, `${answered} requests, ${after.runs - before.runs} runs: some were stacked`);
});

test.serial('a lone request is answered once the delay passes, not held until maxBatch fills', async (t) => {
  const before = await batches('lone');
  // 32 rows never come; the abort only turns a hang into a failure (the delay is 0.3 s).
  const response = await fetch(`${service.url}/models/lone/score`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data: nested(input(300)) }),
    signal: AbortSignal.timeout(60_000),
  });
  t.is(response.status, 200);
  const after = await batches('lone');
  t.is(after.runs - before.runs, 1);
  t.is(after.single - before.single, 1, 'it ran as a batch of one');
});

test.serial('a preferred batch size runs as soon as it can be made, without waiting out the delay', async (t) => {
  // Without the preferred size, four requests sent together would wait the 3 s and run as one batch of 4.
  t.true(await service.deploy({ name: 'pref', version: '1', uri: ocrClassifierPath, batching: { maxBatch: 32, maxDelayMicros: 3_000_000, preferredBatchSizes: 2 } }));
  const inputs = [1, 2, 3, 4].map((seed) => input(seed + 500));
  const reference = await oneByOne(inputs);
  const before = await batches('pref');
  const answers = await Promise.all(inputs.map((data) => oipBinary('pref', data)));
  answers.forEach((answer, i) => t.deepEqual(answer.scores, reference[i]));
  const after = await batches('pref');
  t.is(after.rows - before.rows, 4);
  t.is(after.runs - before.runs, 2, 'two batches of the preferred 2');
});

/** Zero rows added to the slot's batches so far (edge_infer_batch_padding_rows_total). */
async function padding(model: string): Promise<number> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  return Number(new RegExp(`^edge_infer_batch_padding_rows_total\\{model="${model}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
}

test.serial('with padBatches a batch is filled with zero rows up to maxBatch, and each request still gets exactly its own rows', async (t) => {
  t.true(await service.deploy({ name: 'padded', version: '1', uri: ocrClassifierPath, batching: { maxBatch: 8, maxDelayMicros: 1_000_000, padBatches: true } }));
  const inputs = [1, 2, 3].map((seed) => input(seed + 800));
  const reference = await oneByOne(inputs);
  const before = await batches('padded');
  // The version's own warm-up runs went through the batcher too.
  const padded = await padding('padded');
  const answers = await Promise.all(inputs.map((data) => oipBinary('padded', data)));
  answers.forEach((answer, i) => t.deepEqual(answer.scores, reference[i], `request ${i}`));
  const after = await batches('padded');
  t.is(after.rows - before.rows, 3, 'the histogram counts the requests\' rows, not the padding');
  t.is(after.runs - before.runs, 1);
  t.is((await padding('padded')) - padded, 5, 'three rows ran as a batch of 8');

  // One request of 3 rows alone is padded too; one of 8 (maxBatch) is not.
  const three = input(900, 3 * PER_REQUEST);
  const threeShape = [3, ...SHAPE.slice(1)];
  const alone = await oipBinaryAt(service.url, 'padded', three, threeShape);
  t.deepEqual(alone.scores, (await oipBinaryAt(service.url, 'plain', three, threeShape)).scores);
  t.is((await padding('padded')) - padded, 10);
  const eightShape = [8, ...SHAPE.slice(1)];
  t.is((await oipBinaryAt(service.url, 'padded', input(901, 8 * PER_REQUEST), eightShape)).status, 200);
  t.is((await padding('padded')) - padded, 10);
  // Slots that do not pad have no padding figures at all.
  t.is(await padding('cls'), 0);
});

test.serial('padBatches warms a batch of maxBatch rows at load for a model fixed past its first dimension, and nothing for one whose other dimensions are free', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-batching-sizes-'));
  const identity = path.join(dir, 'identity.onnx');
  await writeFile(identity, identityModel(['n', 4]));
  /** The CPU target, telling the first dimension of every run its models make. */
  const recording = (runs: number[]): Target => {
    const cpu = cpuTarget({ threads: 1 });
    const record = (model: EngineModel): EngineModel => ({ file: model.file, signature: model.signature, run: (feeds, names) => (runs.push(Object.values(feeds)[0]!.dims[0]!), model.run(feeds, names)), release: () => model.release() });
    return { running: cpu.running, load: async (file) => record(await cpu.load(file)), createSession: (file) => cpu.createSession(file) };
  };
  const runs: number[] = [];
  const settings = { maxBatch: 6, maxDelayMicros: 0, padBatches: true };
  const model = await batchingTarget('identity', recording(runs), settings, () => undefined).load(identity);
  try {
    t.deepEqual(runs, [6], 'one batch of maxBatch zero rows');
    const rows = Float32Array.from({ length: 12 }, (_, i) => i + 1);
    const outputs = await model.run({ x: { type: 'float32', dims: [3, 4], data: rows } });
    t.is(runs.at(-1), 6, 'three rows ran as six');
    t.deepEqual(outputs.y!.dims, [3, 4]);
    t.deepEqual([...outputs.y!.data], [...rows]);
  } finally {
    await model.release();
  }

  const free: number[] = [];
  const cls = await batchingTarget('cls', recording(free), settings, () => undefined).load(ocrClassifierPath);
  await cls.release();
  t.deepEqual(free, [], 'no shape past the first dimension to warm');
});

test.serial('batching a model whose first input dimension is fixed fails the slot with EI_BATCHING_UNSUPPORTED; contradictory settings are EI_DESIRED_INVALID', async (t) => {
  const face: ModelSpec = { ...BUNDLED_MODEL, name: 'face', version: 'b1', batching: { maxBatch: 4, maxDelayMicros: 1000 } };
  const wrong = { name: 'wrong', version: '1', uri: ocrClassifierPath, batching: { maxBatch: 4, maxDelayMicros: 1000, preferredBatchSizes: [2, 8] } } as ModelSpec;
  service.reconciler.apply(desired(cls('a'), plain, lone, face, wrong));
  await service.reconciler.settled();
  const faceStatus = service.status.model('face');
  t.is(faceStatus?.status, 'failed');
  t.is(faceStatus?.error?.code, 'EI_BATCHING_UNSUPPORTED');
  t.regex(faceStatus?.error?.message ?? '', /first dimension of input "input:0" is 1, not free/);
  t.is(service.registry.active('face'), undefined);
  const wrongStatus = service.status.model('wrong');
  t.is(wrongStatus?.error?.code, 'EI_DESIRED_INVALID');
  t.regex(wrongStatus?.error?.message ?? '', /\/models\/wrong\/batching\/preferredBatchSizes: 8 is not between 1 and maxBatch \(4\)/);
  service.reconciler.apply(desired(cls('a'), plain, lone));
  await service.reconciler.settled();
});

test.serial('on an accelerator a batch is one inference on the server; a batch whose run fails fails its own requests, and the next batch is answered', async (t) => {
  const far: ModelSpec = {
    name: 'far',
    version: '1',
    uri: ocrClassifierPath,
    target: 'fpga',
    fallback: 'none',
    accelerator: { url: accelerator.url, model: 'cls', retries: 0, breakerFailures: 5 },
    batching: { maxBatch: 4, maxDelayMicros: 1_500_000 },
  };
  t.true(await service.deploy(far));
  const inputs = [1, 2, 3, 4].map((seed) => input(seed + 400));
  const reference = await oneByOne(inputs);
  const wave = () => Promise.all(inputs.map((data) => oipBinary('far', data)));

  const before = accelerator.inferRequests;
  const answered = await wave();
  answered.forEach((answer, i) => t.deepEqual(answer.scores, reference[i]));
  t.is(accelerator.inferRequests - before, 1, 'four requests, one inference on the server');

  await accelerator.stop();
  let failed: Awaited<ReturnType<typeof wave>>;
  try {
    failed = await wave();
  } finally {
    await accelerator.listen();
  }
  for (const answer of failed) t.is(answer.status, 503, JSON.stringify(answer.body));
  const again = await wave();
  again.forEach((answer, i) => t.deepEqual(answer.scores, reference[i]));
});

test.serial('input messages through the test edgeHub (the real SDK over MQTT+TLS) share batches, and each result is what its input gets alone', async (t) => {
  // Smaller images than above: edgeHub messages are kept well under IoT Hub's 256 KiB.
  const shape = [1, 3, 48, 48];
  const tls = await makeCertificate();
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-batching-hub-'));
  await writeFile(path.join(dir, 'ca.pem'), tls.cert);
  const models = { cls: { version: '1', uri: ocrClassifierPath, batching: { maxBatch: 8, maxDelayMicros: 1_000_000 } }, plain: { version: '1', uri: ocrClassifierPath } };
  const hub = new EdgeHub({ tls, hubName: 'hub.example', deviceId: 'gw', moduleId: 'edge-infer', key: Buffer.from('batching-key-'.repeat(3)).toString('base64'), desired: { models } });
  await hub.start();
  const program = await startProgram(['--store', path.join(dir, 'store')], { EDGE_INFER_CONNECTION_STRING: hub.connectionString, EDGE_INFER_CA_FILE: path.join(dir, 'ca.pem') }).catch(async (error: unknown) => {
    await hub.stop();
    throw error;
  });
  try {
    const reported = () => (hub.reported as { models?: Record<string, { status: string } | null> }).models ?? {};
    await until(() => reported().cls?.status === 'active' && reported().plain?.status === 'active', 'both slots active', { timeoutMs: 60_000, describe: () => hub.reported });
    const inputs = [1, 2, 3, 4, 5, 6, 7, 8].map((seed) => input(seed + 600, 3 * 48 * 48));
    const reference: number[][] = [];
    for (const data of inputs) reference.push((await oipBinaryAt(program.url, 'plain', data, shape)).scores!);
    const before = await batches('cls', program.url);
    const sentBefore = hub.outputs.length;
    const ids = await Promise.all(inputs.map((data) => hub.sendInput('score', JSON.stringify({ data: nested(data, shape) }), { '$.ct': 'application/json', model: 'cls' })));
    const outputs = (await hub.waitForOutputs(sentBefore + inputs.length, 60_000)).slice(sentBefore);
    ids.forEach((id, i) => {
      const message = outputs.find((m) => m.properties['$.cid'] === id);
      t.is(message?.output, 'results');
      const result = (JSON.parse(message!.body.toString()) as { result: { outputs: Record<string, { data: number[] }> } }).result;
      t.deepEqual(result.outputs[OUTPUT]?.data, reference[i], `message ${i}`);
    });
    const after = await batches('cls', program.url);
    t.is(after.rows - before.rows, 8);
    t.true(after.runs - before.runs < 8, `8 messages ran as ${after.runs - before.runs} batches`);
  } finally {
    await program.stop();
    await hub.stop();
  }
});
