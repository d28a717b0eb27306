/**
 * Fuzzing Open Inference Protocol infer (issue 12, point 7): JSON requests with odd names, datatypes, shapes,
 * nesting and parameters, and binary requests whose `Inference-Header-Content-Length` and `binary_data_size`
 * disagree with the bytes sent. Every answer keeps the contract (4xx with the OIP error body, never 5xx), a good
 * request after each case answers as it did before, and resident memory comes back near where it started.
 */
import test from 'ava';
import fc from 'fast-check';
import { fuzzRuns, headerLengthFor, oipRequest, pathName } from './support/arbitraries.js';
import { bodyOf, contractBreach, residentMiB, testResidentMemoryReturns } from './support/fuzz-checks.js';
import { ocrClassifierPath } from './support/fixtures.js';
import { bundledFace, startService, type TestService } from './support/service.js';

/** The PaddleOCR direction classifier, bare: input `x` [-1, 3, -1, -1], output `softmax_0.tmp_0`. */
const CLS = { name: 'cls', version: '1', uri: ocrClassifierPath };
const INPUTS = ['x', 'input:0'];
const OUTPUTS = ['softmax_0.tmp_0', 'classificators', 'regressors'];

/** A small, fixed classifier request: what must answer the same after every case. */
const GOOD = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 2, 2], data: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, -1, 0] }] });

let service: TestService;
let goodAnswer: string;
let startMiB: number;

test.before(async () => {
  service = await startService({ models: [bundledFace, CLS] });
  goodAnswer = await inferGood();
  startMiB = residentMiB();
});
test.after.always(() => service?.close());

async function inferGood(): Promise<string> {
  const response = await fetch(`${service.url}/v2/models/cls/infer`, { method: 'POST', body: GOOD });
  return `${response.status} ${await response.text()}`;
}

async function sendAndCheck(model: string, body: Uint8Array, headerLength: string | undefined): Promise<void> {
  const response = await fetch(`${service.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': headerLength === undefined ? 'application/json' : 'application/octet-stream', ...(headerLength === undefined ? {} : { 'inference-header-content-length': headerLength }) },
    body: body as BodyInit,
  });
  const answer = await bodyOf(response);
  const breach = contractBreach(response.status, answer, true);
  if (breach) throw new Error(`infer on ${model}: ${breach}`);
  const after = await inferGood();
  if (after !== goodAnswer) throw new Error(`the good request now answers ${after.slice(0, 300)}`);
}

const model = fc.oneof({ weight: 4, arbitrary: fc.constant('cls') }, { weight: 2, arbitrary: fc.constant('face') }, { weight: 1, arbitrary: pathName });

test.serial('JSON infer requests answer the contract and leave the models as they were', async (t) => {
  await fc.assert(
    fc.asyncProperty(model, oipRequest(INPUTS, OUTPUTS), async (name, request) => sendAndCheck(name, Buffer.from(JSON.stringify(request)), undefined)),
    fuzzRuns(80),
  );
  t.pass();
});

/** Near a good binary classifier request: FP32 bytes for [n, 3, h, w], with sizes right or a few bytes off. */
const nearBinary = fc
  .record({ batch: fc.integer({ min: 0, max: 2 }), height: fc.integer({ min: 0, max: 8 }), width: fc.integer({ min: 0, max: 8 }), off: fc.constantFrom(0, 0, 0, -1, 1, 4, -4), datatype: fc.constantFrom('FP32', 'FP32', 'FP64', 'UINT8', 'INT64') })
  .chain(({ batch, height, width, off, datatype }) => {
    const size = Math.max(0, batch * 3 * height * width * 4 + off);
    return fc.uint8Array({ minLength: size, maxLength: size }).map((bytes) => ({
      header: { inputs: [{ name: 'x', datatype, shape: [batch, 3, height, width], parameters: { binary_data_size: size } }], parameters: { binary_data_output: true } },
      bytes,
    }));
  });

/** Any request's JSON with random bytes after it, as many as its inputs declare or not. */
const anyBinary = oipRequest(INPUTS, OUTPUTS).chain((header) => fc.uint8Array({ maxLength: 256 }).map((bytes) => ({ header: header as object, bytes })));

test.serial('binary infer requests answer the contract whatever their header length and sizes say', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof({ weight: 3, arbitrary: fc.constant('cls') }, { weight: 1, arbitrary: fc.constant('face') }),
      fc.oneof(nearBinary, anyBinary).chain(({ header, bytes }) => {
        const json = Buffer.from(JSON.stringify(header));
        return headerLengthFor(json.length).map((length) => ({ body: Buffer.concat([json, bytes]), length }));
      }),
      async (name, { body, length }) => sendAndCheck(name, body, length),
    ),
    fuzzRuns(70),
  );
  t.pass();
});

testResidentMemoryReturns(() => startMiB);
