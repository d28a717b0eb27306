/**
 * The remote (`fpga`) target against two OIP servers written for these tests: one JSON-only with the
 * repository extension (as AMD Inference Server behaves), one with the binary tensor extension (as Triton).
 * Pre- and postprocessing stay in the module, so the detections must equal the local CPU's exactly.
 */
import test from 'ava';
import type { ModelSpec } from '../src/models/deploy.js';
import { BinaryOipServer } from './support/oip-server-binary.js';
import { startJsonOipServer, type JsonOipServer } from './support/oip-server-json.js';
import { ocrClassifierPath, photo, postImage } from './support/fixtures.js';
import { makePackageFolder } from './support/packages.js';
import { bundledFace, startService, type TestService } from './support/service.js';
import { until } from './support/until.js';

const SECRET = 'Bearer accelerator-secret-7f3a';

let service: TestService;
let jsonServer: JsonOipServer;
let binaryServer: BinaryOipServer;
const cpuAnswers = new Map<number, unknown>();

test.before(async () => {
  jsonServer = await startJsonOipServer({ face: bundledFace.uri });
  binaryServer = await BinaryOipServer.start({ face: bundledFace.uri });
  service = await startService();
  for (const n of [1, 2, 3, 4, 5, 6]) cpuAnswers.set(n, await (await postImage(`${service.url}/models/face/score`, await photo(n))).json());
});
test.after.always(async () => {
  await service?.close();
  await jsonServer?.close();
  await binaryServer?.close();
});

function remoteSlot(name: string, accelerator: NonNullable<ModelSpec['accelerator']>, extra: Partial<ModelSpec> = {}): ModelSpec {
  return { ...bundledFace, name, version: '1', target: 'fpga', accelerator, ...extra };
}

async function sameAsCpu(t: import('ava').ExecutionContext, slot: string): Promise<void> {
  for (const n of [1, 2, 3, 4, 5, 6]) {
    const response = await postImage(`${service.url}/models/${slot}/score`, await photo(n));
    t.is(response.status, 200);
    t.deepEqual(await response.json(), cpuAnswers.get(n), `sample${n}.jpg`);
  }
}

test.serial('JSON-only server with the repository extension: loaded with the slot parameters, same detections as the CPU', async (t) => {
  t.true(await service.deploy(remoteSlot('amd', { url: jsonServer.url, model: 'face', parameters: { batch_size: 1, xmodel: 'face-v1.xmodel' } }, { fallback: 'none' })));
  t.deepEqual(jsonServer.loads, [{ model: 'face', parameters: { batch_size: 1, xmodel: 'face-v1.xmodel' } }]);
  const status = service.status.model('amd')!;
  t.like(status, { status: 'active', target: 'fpga', requestedTarget: 'fpga', targetReason: null });
  const before = jsonServer.inferences;
  await sameAsCpu(t, 'amd');
  t.is(jsonServer.inferences - before, 6, 'every photo was inferred on the server');
  const fpga = service.status.snapshot().runtime.targets.fpga;
  t.like(fpga, { status: 'available', details: { server: 'amdinfer', version: '0.4.0', extensions: 'model_repository' } });
});

test.serial('a version change through the desired state makes the server load again, with the new version parameters', async (t) => {
  const slot = (version: string, xmodel: string) => ({ version, uri: bundledFace.uri, target: 'fpga', fallback: 'none', accelerator: { url: jsonServer.url, model: 'face', parameters: { xmodel } }, ...bundledFace.settings });
  const loadsBefore = jsonServer.loads.length;
  service.reconciler.apply({ models: { face: { version: '1', uri: bundledFace.uri, ...bundledFace.settings }, twin: slot('1', 'a.xmodel') } });
  await service.reconciler.settled();
  service.reconciler.apply({ models: { face: { version: '1', uri: bundledFace.uri, ...bundledFace.settings }, twin: slot('2', 'b.xmodel') } });
  await service.reconciler.settled();
  t.like(service.status.model('twin'), { status: 'active', version: '2', target: 'fpga' });
  t.deepEqual(jsonServer.loads.slice(loadsBefore).map((l) => l.parameters.xmodel), ['a.xmodel', 'b.xmodel']);
});

test.serial('binary server: tensors travel as binary, detections equal the CPU, credentials reach the server and nothing else', async (t) => {
  binaryServer.requiredAuthorization = SECRET;
  try {
    t.true(await service.deploy(remoteSlot('triton', { url: binaryServer.url, model: 'face', headers: { authorization: SECRET } }, { fallback: 'none' })));
    const before = { ...binaryServer.served };
    await sameAsCpu(t, 'triton');
    t.is(binaryServer.served.binary - before.binary, 6);
    t.is(binaryServer.served.json - before.json, 0);
    t.true(binaryServer.authorizations.has(SECRET));
    const reported = JSON.stringify(service.status.snapshot());
    t.false(reported.includes('accelerator-secret'), 'the status (and so the reported properties) never holds the credentials');

    // A wrong credential fails the slot with the server's refusal, which does not repeat the header either.
    t.false(await service.deploy(remoteSlot('triton-denied', { url: binaryServer.url, model: 'face', headers: { authorization: 'Bearer wrong-secret-1' } }, { fallback: 'none' })));
    const denied = service.status.model('triton-denied')!;
    t.is(denied.error?.code, 'EI_ACCELERATOR_REFUSED');
    t.regex(denied.error!.message, /401/);
    t.false(JSON.stringify(service.status.snapshot()).includes('wrong-secret'));
  } finally {
    binaryServer.requiredAuthorization = undefined;
  }
});

test.serial('a killed server opens the breaker: every /score still answers from the CPU; restarted, the breaker closes by itself', async (t) => {
  const accelerator = { url: binaryServer.url, model: 'face', timeoutMs: 2000, breakerFailures: 2, breakerResetMs: 200 };
  t.true(await service.deploy(remoteSlot('breaker', accelerator, { fallback: 'cpu' })));
  t.is(service.status.model('breaker')!.target, 'fpga');

  await binaryServer.stop();
  for (let i = 0; i < 6; i++) {
    const n = (i % 6) + 1;
    const response = await postImage(`${service.url}/models/breaker/score`, await photo(n));
    t.is(response.status, 200, 'no failed /score while fallback is cpu');
    t.deepEqual(await response.json(), cpuAnswers.get(n));
  }
  const open = service.status.model('breaker')!;
  t.like(open, { status: 'active', target: 'cpu', requestedTarget: 'fpga' });
  t.regex(open.targetReason ?? '', /running on the CPU until it answers/);

  await binaryServer.listen();
  await until(() => service.status.model('breaker')!.target === 'fpga', 'the breaker closed after the server came back', { timeoutMs: 10_000 });
  t.is(service.status.model('breaker')!.targetReason, null);
  const before = binaryServer.served.binary;
  await sameAsCpu(t, 'breaker');
  t.is(binaryServer.served.binary - before, 6, 'requests go to the server again');
});

test.serial('a server down at load time with fallback cpu serves from the CPU and moves to the server once it answers', async (t) => {
  await binaryServer.stop();
  try {
    t.true(await service.deploy(remoteSlot('late', { url: binaryServer.url, model: 'face', breakerResetMs: 200, retries: 0 }, { fallback: 'cpu' })));
    t.like(service.status.model('late'), { status: 'active', target: 'cpu', requestedTarget: 'fpga' });
    t.like(service.status.snapshot().runtime.targets.fpga, { status: 'unavailable' });
    await sameAsCpu(t, 'late');
  } finally {
    await binaryServer.listen();
  }
  await until(() => service.status.model('late')!.target === 'fpga', 'the remote model moved to the server', { timeoutMs: 10_000 });
});

test.serial('a server down with fallback none fails the slot with the reason', async (t) => {
  await binaryServer.stop();
  try {
    t.false(await service.deploy(remoteSlot('down', { url: binaryServer.url, model: 'face', retries: 0 }, { fallback: 'none' })));
    const status = service.status.model('down')!;
    t.is(status.error?.code, 'EI_ACCELERATOR_UNAVAILABLE');
    t.regex(status.error!.message, /ECONNREFUSED/);
  } finally {
    await binaryServer.listen();
  }
});

test.serial('a server whose model does not match the package is refused with both signatures', async (t) => {
  const other = await BinaryOipServer.start({ face: bundledFace.uri }, { face: ocrClassifierPath });
  try {
    t.false(await service.deploy(remoteSlot('mismatch', { url: other.url, model: 'face' }, { fallback: 'cpu' })));
    const status = service.status.model('mismatch')!;
    t.is(status.status, 'failed');
    t.is(status.error?.code, 'EI_ACCELERATOR_MISMATCH');
    t.regex(status.error!.message, /the server has inputs x FP32\[-1,3,-1,-1\]/);
    t.regex(status.error!.message, /the package has inputs input:0 FP32\[1,256,256,3\]/);
  } finally {
    await other.close();
  }
});

test.serial('an entry script runs unchanged on the remote target: its ctx.model is the server', async (t) => {
  const script = `export async function run(input, ctx) {
  const feeds = await ctx.imageToTensor(input.image);
  const outputs = await ctx.model.run(feeds);
  return { faces: ctx.postprocess(outputs).detections.length, outputs: Object.keys(outputs).sort() };
}`;
  const folder = await makePackageFolder({
    copy: { 'face.onnx': bundledFace.uri },
    write: { 'score.mjs': script, 'edge-infer.json': bundledFace.settings! },
  });
  t.true(await service.deploy({ ...bundledFace, name: 'scripted-cpu', uri: folder, settings: {} }));
  t.true(await service.deploy(remoteSlot('scripted-remote', { url: binaryServer.url, model: 'face' }, { uri: folder, settings: {}, fallback: 'none' })));
  const before = binaryServer.served.binary;
  const local = await postImage(`${service.url}/models/scripted-cpu/score`, await photo(2));
  const remote = await postImage(`${service.url}/models/scripted-remote/score`, await photo(2));
  t.is(remote.status, 200);
  t.deepEqual(await remote.json(), await local.json());
  t.is(binaryServer.served.binary - before, 1, 'the script\'s model ran on the server');
});

test.serial('a slow server hits the deadline instead of hanging the request', async (t) => {
  t.true(await service.deploy(remoteSlot('slow', { url: binaryServer.url, model: 'face', timeoutMs: 300 }, { fallback: 'none' })));
  binaryServer.delayMs = 20_000;
  const received = binaryServer.inferRequests;
  try {
    const response = await postImage(`${service.url}/models/slow/score`, await photo(1));
    t.is(response.status, 503);
    const body = (await response.json()) as { error: { code: string; message: string } };
    t.is(body.error.code, 'EI_ACCELERATOR_UNAVAILABLE');
    t.regex(body.error.message, /deadline of 300 ms/);
    t.is(binaryServer.inferRequests - received, 1, 'an inference is never sent twice');
  } finally {
    binaryServer.delayMs = 0;
  }
});
