/**
 * The real program as an IoT Edge module: the real SDK over MQTT+TLS to the test edgeHub, configured by a
 * module connection string and the test CA, as a device with its own gateway would run it.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { EdgeHub } from './support/edgehub.js';
import { photo } from './support/fixtures.js';
import { makeCertificate } from './support/network.js';
import { startHttpCamera } from './support/http-camera.js';
import { until as waitUntil } from './support/until.js';
import { startProgram, type RunningProgram } from './support/program.js';

const face = (version: string) => ({ version, uri: BUNDLED_MODEL.uri, ...BUNDLED_MODEL.settings });

interface Reported {
  runtime?: { version: string };
  models?: Record<string, { status: string; version: string | null; candidate?: { status: string; shadow: { samples: number } | null } | null } | null>;
  cameras?: Record<string, { status: string; fps: number; lastFrameAt: string | null } | null>;
}

let hub: EdgeHub;
let program: RunningProgram;
test.before(async () => {
  const tls = await makeCertificate();
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-hub-'));
  await writeFile(path.join(dir, 'ca.pem'), tls.cert);
  hub = new EdgeHub({ tls, hubName: 'hub.example', deviceId: 'camera-gw', moduleId: 'edge-infer', key: Buffer.from('test-key-'.repeat(4)).toString('base64'), desired: { models: { face: face('1') } } });
  await hub.start();
  // Debug logs say which input messages the module accepted (the SIGTERM test waits on them).
  program = await startProgram(['--store', path.join(dir, 'store'), '--log-level', 'debug'], { EDGE_INFER_CONNECTION_STRING: hub.connectionString, EDGE_INFER_CA_FILE: path.join(dir, 'ca.pem') });
  await until(() => (hub.reported as Reported).models?.face?.status === 'active', 'the model active in the reported properties');
});
test.after.always(async () => {
  await program?.stop();
  await hub?.stop();
});

/** Waits for the hub's state to get somewhere; a timeout shows the reported properties. */
function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  return waitUntil(check, what, { timeoutMs, describe: () => hub.reported });
}

test.serial('the twin names the model; reported properties say what runs, coalesced', async (t) => {
  const reported = hub.reported as Reported;
  t.is(reported.models?.face?.version, '1');
  t.truthy(reported.runtime?.version);
  t.true(hub.reportedPatches.length < 10, `${hub.reportedPatches.length} patches for one load`);
});

test.serial('a desired patch swaps the model; removing it reports null and brings back the bundled one', async (t) => {
  await hub.patchDesired({ models: { face: face('2') } });
  await until(() => (hub.reported as Reported).models?.face?.version === '2', 'version 2 reported');
  t.is((await (await fetch(`${program.url}/status`)).json() as { models: { face: { version: string } } }).models.face.version, '2');
  await hub.patchDesired({ models: { face: null, door: face('7') } });
  await until(() => (hub.reported as Reported).models?.door?.status === 'active', 'the door slot reported');
  t.false('face' in ((hub.reported as Reported).models ?? {}), 'the removed slot was reported as null');
  await hub.patchDesired({ models: { door: null, face: face('2') } });
  await until(() => (hub.reported as Reported).models?.face?.status === 'active' && !('door' in ((hub.reported as Reported).models ?? {})), 'back to face');
});

test.serial('an input image yields a results message with detections and the envelope of the contract', async (t) => {
  const before = hub.outputs.length;
  const id = await hub.sendInput('score', await photo(1), { '$.ct': 'image/jpeg', model: 'face' });
  const [message] = (await hub.waitForOutputs(before + 1)).slice(before);
  t.is(message!.output, 'results');
  t.is(message!.properties['$.ct'], 'application/json');
  t.is(message!.properties['$.ce'], 'utf-8');
  t.is(message!.properties['$.cid'], id);
  t.is(message!.properties.model, 'face');
  t.is(message!.properties.modelVersion, '2');
  t.is(message!.properties.source, 'message');
  const envelope = JSON.parse(message!.body.toString()) as { model: string; version: string; source: { type: string; id: string }; latencyMs: number; result: { detections: unknown[] } };
  t.like(envelope, { model: 'face', version: '2', source: { type: 'message', id } });
  t.true(envelope.latencyMs > 0);
  t.is(envelope.result.detections.length, 3);
});

test.serial('an input that cannot be scored yields an errors message; nothing is dropped', async (t) => {
  const before = hub.outputs.length;
  await hub.sendInput('score', '{"data": [1, 2', {});
  await hub.sendInput('score', JSON.stringify({ data: [[1]] }), { model: 'nobody' });
  const answers = (await hub.waitForOutputs(before + 2)).slice(before);
  t.deepEqual(answers.map((m) => m.output), ['errors', 'errors']);
  const codes = answers.map((m) => (JSON.parse(m.body.toString()) as { error: { code: string } }).error.code).sort();
  t.deepEqual(codes, ['EI_BAD_JSON', 'EI_MODEL_NOT_FOUND']);
});

test.serial('a camera named in the twin sends its frames upstream and is reported; removing it reports null', async (t) => {
  const camera = await startHttpCamera({ jpeg: await sharp(await photo(6)).resize(960).jpeg().toBuffer() });
  try {
    const before = hub.outputs.length;
    await hub.patchDesired({ cameras: { porch: { uri: camera.url('/snapshot.jpg'), fps: 2 } }, output: { name: 'camera-results' } });
    await until(() => hub.outputs.slice(before).filter((m) => m.properties.source === 'camera').length >= 2, 'two camera results');
    const message = hub.outputs.slice(before).find((m) => m.properties.source === 'camera')!;
    t.is(message.output, 'camera-results');
    t.is(message.properties['$.ct'], 'application/json');
    const envelope = JSON.parse(message.body.toString()) as { source: unknown; model: string; result: { detections: unknown[] } };
    t.deepEqual(envelope.source, { type: 'camera', id: 'porch' });
    t.is(envelope.model, 'face');
    t.is(envelope.result.detections.length, 4);
    await until(() => (hub.reported as Reported).cameras?.porch?.status === 'streaming', 'the camera reported streaming');
    t.truthy((hub.reported as Reported).cameras!.porch!.lastFrameAt);
  } finally {
    await hub.patchDesired({ cameras: { porch: null }, output: null });
    await camera.close();
  }
  await until(() => !('porch' in ((hub.reported as Reported).cameras ?? {})), 'the removed camera reported as null');
});

test.serial('direct methods: getStatus, score, activate', async (t) => {
  const status = await hub.invoke('getStatus', {});
  t.is(status.status, 200);
  t.is((status.payload as { models: { face: { status: string } } }).models.face.status, 'active');
  const zeros = Array.from({ length: 256 }, () => Array.from({ length: 256 }, () => [0, 0, 0]));
  const scored = await hub.invoke('score', { data: [zeros] });
  t.is(scored.status, 200);
  t.deepEqual((scored.payload as { result: unknown }).result, { detections: [] });
  const badShape = await hub.invoke('score', { data: [[1]] });
  t.is(badShape.status, 422);
  t.is((badShape.payload as { error: { code: string } }).error.code, 'EI_INPUT_SHAPE');
  await hub.patchDesired({ models: { face: face('5') } });
  await until(() => (hub.reported as Reported).models?.face?.version === '5', 'version 5 reported');
  const rollback = await hub.invoke('activate', { model: 'face', version: '2' });
  t.is(rollback.status, 200, JSON.stringify(rollback.payload));
  await until(() => (hub.reported as Reported).models?.face?.version === '2', 'the rollback reported');
  const missing = await hub.invoke('activate', { model: 'face', version: '99' });
  t.is(missing.status, 404);
});

test.serial('a candidate shadowed on input messages reports its agreement; the promote method swaps it in and the twin says so', async (t) => {
  await hub.patchDesired({ models: { face: { ...face('6'), candidate: { ...face('7'), shadowShare: 1 } } } });
  await until(() => (hub.reported as Reported).models?.face?.candidate?.status === 'active', 'the candidate reported as shadowed');
  const image = await photo(3);
  const before = hub.outputs.length;
  for (let i = 0; i < 3; i++) {
    await hub.sendInput('score', image, { '$.ct': 'image/jpeg' });
    // One at a time: a shadow run waits for the slot to be idle.
    await until(() => hub.outputs.length > before + i, 'the answer');
  }
  await until(() => ((hub.reported as Reported).models?.face?.candidate?.shadow?.samples ?? 0) >= 3, 'three shadow samples reported');
  t.like((hub.reported as Reported).models?.face?.candidate?.shadow, { agreement: 1, errors: 0 });
  const promoted = await hub.invoke('promote', { model: 'face' });
  t.is(promoted.status, 200, JSON.stringify(promoted.payload));
  await until(() => (hub.reported as Reported).models?.face?.version === '7', 'the promoted version reported');
  // A null in a reported patch deletes the property: the twin holds no candidate any more.
  t.like((hub.reported as Reported).models?.face, { promotion: { from: '6', by: 'method' } });
  t.is((hub.reported as Reported).models?.face?.candidate, undefined);
  const none = await hub.invoke('promote', { model: 'face' });
  t.is(none.status, 404);
});

test.serial('SIGTERM while accepted messages wait or are being scored: every one is answered before the exit', async (t) => {
  const image = await photo(2);
  const before = hub.outputs.length;
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) ids.push(await hub.sendInput('score', image, { '$.ct': 'image/jpeg' }));
  // Accepted: in the module's queue or being scored (four at a time), most not answered yet.
  for (const id of ids) await program.waitForLog((line) => line.msg === 'input message accepted' && line.messageId === id);
  t.is(await program.stop(), 0);
  const answered = hub.outputs.slice(before);
  t.deepEqual(answered.map((m) => m.properties['$.cid']).sort(), [...ids].sort(), 'one answer per message, none lost');
  t.true(answered.every((m) => m.output === 'results'));
});
