/**
 * Fuzzing edgeHub input messages (issue 12, point 7), end to end: the real program connected to the test edgeHub
 * over MQTT+TLS by the device SDK, messages with odd application properties (model names, content types and
 * encodings, correlation ids, noise) and odd bodies (noise, cut images, almost-JSON), on `score` and on inputs the
 * module does not read. Each message on `score` gets one answer, on `errors` only with a code for bad input, a
 * good message after each case scores as before, and the module's resident memory comes back near its start.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { fuzzRuns, messageProperties, oddImageBytes, oddJsonText, tensorData } from './support/arbitraries.js';
import { EdgeHub, type OutputMessage } from './support/edgehub.js';
import { codeBreach, smallPhoto, testResidentMemoryReturns } from './support/fuzz-checks.js';
import { makeCertificate } from './support/network.js';
import { startProgram, type RunningProgram } from './support/program.js';
import { until } from './support/until.js';

let hub: EdgeHub;
let program: RunningProgram;
let goodImage: Buffer;
let goodResult: string;
let startMiB: number;

test.before(async () => {
  const tls = await makeCertificate();
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-fuzz-hub-'));
  await writeFile(path.join(dir, 'ca.pem'), tls.cert);
  const face = { version: '1', uri: BUNDLED_MODEL.uri, ...BUNDLED_MODEL.settings };
  hub = new EdgeHub({ tls, hubName: 'hub.example', deviceId: 'fuzz-gw', moduleId: 'edge-infer', key: Buffer.from('fuzz-key-'.repeat(4)).toString('base64'), desired: { models: { face } } });
  await hub.start();
  program = await startProgram(['--store', path.join(dir, 'store')], { EDGE_INFER_CONNECTION_STRING: hub.connectionString, EDGE_INFER_CA_FILE: path.join(dir, 'ca.pem') });
  await until(() => (hub.reported as { models?: { face?: { status?: string } } }).models?.face?.status === 'active', 'the face model active', { timeoutMs: 60_000 });
  goodImage = await smallPhoto();
  goodResult = await sendGood();
  startMiB = await programResidentMiB();
});
test.after.always(async () => {
  await program?.stop();
  await hub?.stop();
});

async function programResidentMiB(): Promise<number> {
  const status = await readFile(`/proc/${program.child.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) / 1024;
}

/** Sends and waits for the one answer it must get. */
async function answerTo(body: Buffer | string, properties: Record<string, string>): Promise<OutputMessage> {
  const before = hub.outputs.length;
  await hub.sendInput('score', body, properties);
  const outputs = await hub.waitForOutputs(before + 1);
  if (outputs.length > before + 1) throw new Error(`${outputs.length - before} answers to one message`);
  return outputs[before]!;
}

/** The good message's result, without what changes per message (ids, times, latency). */
async function sendGood(): Promise<string> {
  const answer = await answerTo(goodImage, { '$.ct': 'image/jpeg', model: 'face' });
  const envelope = JSON.parse(answer.body.toString()) as { result?: unknown; error?: unknown };
  return `${answer.output} ${JSON.stringify(envelope.result ?? envelope.error)}`;
}

/** Bodies: noise, the good photo cut or with bytes changed, almost-JSON, tensors, nothing. */
function messageBody(image: Buffer): fc.Arbitrary<Buffer | string> {
  return fc.oneof(
    oddImageBytes(new Uint8Array(image)).map((bytes) => Buffer.from(bytes)),
    oddJsonText,
    fc.record({ data: tensorData }).map((value) => JSON.stringify(value)),
    fc.constant(''),
  );
}

test.serial('odd messages get one answer each, with a code for bad input, and the model goes on', async (t) => {
  t.regex(goodResult, /^results \{"detections":\[\{/);
  await fc.assert(
    fc.asyncProperty(fc.constantFrom('score', 'score', 'score', 'Score', 'input2'), messageProperties, messageBody(goodImage), async (input, properties, payload) => {
      if (program.child.exitCode !== null) throw new Error(`the module exited with ${program.child.exitCode}`);
      if (input === 'score') {
        const answer = await answerTo(payload, properties);
        if (answer.output === 'errors') {
          const { error } = JSON.parse(answer.body.toString()) as { error: { code: string; message: string } };
          const breach = codeBreach(error.code);
          if (breach) throw new Error(`${breach}: ${error.message}`);
        }
      } else {
        // Not an input the module reads: completed and dropped, so no answer comes before the good one's.
        await hub.sendInput(input, payload, properties);
      }
      const after = await sendGood();
      if (after !== goodResult) throw new Error(`the good message now answers ${after.slice(0, 300)}`);
    }),
    fuzzRuns(30),
  );
  t.is(program.child.exitCode, null);
});

testResidentMemoryReturns(() => startMiB, programResidentMiB, "the module's resident memory");
