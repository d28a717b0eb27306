import test from 'ava';
import { EdgeInferError } from '../src/errors.js';
import { errorAnswer } from '../src/server/http-errors.js';
import { photo, postImage, postJson } from './support/fixtures.js';
import { startService, type TestService } from './support/service.js';

let service: TestService;
test.before(async () => {
  service = await startService({ maxBody: 1024 * 1024 });
  // A slot that is expected but has no version yet: it must answer 503, not 404.
  service.registry.expect('pending-model');
});
test.after.always(() => service?.close());

/** After each bad request, the model still answers a good one: nothing was lost. */
async function stillServes(t: import('ava').ExecutionContext): Promise<void> {
  const response = await postImage(`${service.url}/score`, await photo(1));
  t.is(response.status, 200);
  t.is(((await response.json()) as { detections: unknown[] }).detections.length, 3);
}

async function expectError(t: import('ava').ExecutionContext, response: Response, status: number, code: string): Promise<void> {
  t.is(response.status, status);
  const body = (await response.json()) as { error: { code: string; message: string } };
  t.is(body.error.code, code);
  t.true(body.error.message.length > 10, 'the message says what to fix');
  t.false(/\n\s+at /.test(body.error.message), 'no stack trace');
  await stillServes(t);
}

const zeros = (shape: number[]): unknown => (shape.length === 0 ? 0 : Array.from({ length: shape[0]! }, () => zeros(shape.slice(1))));

test('400 for a body that is not JSON', async (t) => {
  const response = await fetch(`${service.url}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data": [1, 2' });
  await expectError(t, response, 400, 'EI_BAD_JSON');
});

test('400 for JSON of the wrong form', async (t) => {
  await expectError(t, await postJson(`${service.url}/score`, { tensor: [1] }), 400, 'EI_BAD_REQUEST');
});

test('400 for a ragged array', async (t) => {
  await expectError(t, await postJson(`${service.url}/score`, { data: [[1, 2], [3]] }), 400, 'EI_BAD_REQUEST');
});

test('400 for an image that does not decode', async (t) => {
  await expectError(t, await postImage(`${service.url}/score`, Buffer.from('not a jpeg at all, just text')), 400, 'EI_BAD_IMAGE');
});

test('404 for an unknown model, naming the models served', async (t) => {
  const response = await postImage(`${service.url}/models/cat/score`, await photo(1));
  t.is(response.status, 404);
  const body = (await response.json()) as { error: { code: string; message: string } };
  t.is(body.error.code, 'EI_MODEL_NOT_FOUND');
  t.regex(body.error.message, /face/);
  await stillServes(t);
});

test('404 for an unknown route', async (t) => {
  await expectError(t, await fetch(`${service.url}/nothing/here`), 404, 'EI_ROUTE_NOT_FOUND');
});

test('413 for a body over the limit', async (t) => {
  await expectError(t, await postImage(`${service.url}/score`, Buffer.alloc(2 * 1024 * 1024, 1)), 413, 'EI_BODY_TOO_LARGE');
});

test('413 on the Open Inference Protocol route too, in its error format', async (t) => {
  const response = await fetch(`${service.url}/v2/models/face/infer`, { method: 'POST', headers: { 'inference-header-content-length': '2' }, body: Buffer.alloc(2 * 1024 * 1024) });
  t.is(response.status, 413);
  t.regex(((await response.json()) as { error: string }).error, /larger than the limit/);
  await stillServes(t);
});

test('415 for a content type that is not JSON or an image', async (t) => {
  const response = await fetch(`${service.url}/score`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
  await expectError(t, response, 415, 'EI_UNSUPPORTED_MEDIA_TYPE');
});

test('422 for an input name the model does not have', async (t) => {
  await expectError(t, await postJson(`${service.url}/score`, { inputs: { pixels: zeros([1, 256, 256, 3]) } }), 422, 'EI_INPUT_NAME');
});

test('422 for a dtype the input does not take', async (t) => {
  const body = { inputs: { 'input:0': { dtype: 'int64', shape: [1, 256, 256, 3], data: zeros([1, 256, 256, 3]) } } };
  await expectError(t, await postJson(`${service.url}/score`, body), 422, 'EI_INPUT_DTYPE');
});

test('422 for a shape the input does not take', async (t) => {
  const response = await postJson(`${service.url}/score`, { data: zeros([1, 128, 128, 3]) });
  t.is(response.status, 422);
  const body = (await response.json()) as { error: { code: string; message: string } };
  t.is(body.error.code, 'EI_INPUT_SHAPE');
  t.regex(body.error.message, /\[1,256,256,3\]/, 'the message gives the shape to send');
  await stillServes(t);
});

test('503 for a model with no active version yet', async (t) => {
  await expectError(t, await postImage(`${service.url}/models/pending-model/score`, await photo(1)), 503, 'EI_MODEL_NOT_READY');
});

test('a tensor that fits gets the detector answer in pixels of the model input', async (t) => {
  const response = await postJson(`${service.url}/score`, { data: zeros([1, 256, 256, 3]) });
  t.is(response.status, 200);
  t.deepEqual(await response.json(), { detections: [] });
});

test('many bad requests at once while good ones run: every good one succeeds', async (t) => {
  const image = await photo(2);
  const good = Array.from({ length: 6 }, () => postImage(`${service.url}/score`, image));
  const bad = Array.from({ length: 6 }, () => postImage(`${service.url}/score`, Buffer.from('garbage')));
  const results = await Promise.all([...good, ...bad]);
  t.deepEqual(
    results.map((r) => r.status),
    [...Array(6).fill(200), ...Array(6).fill(400)],
  );
});

test('a 503 that tells a reported state (no active version yet) is logged at debug; a fault is logged at error with its cause', (t) => {
  const logged: Array<[string, unknown]> = [];
  const log = { debug: (fields: unknown) => logged.push(['debug', fields]), error: (fields: unknown) => logged.push(['error', fields]) };
  const notReady = errorAnswer(new EdgeInferError('EI_MODEL_NOT_READY', ['face', 'not loaded yet']), '/score', 'r1', log);
  t.is(notReady.status, 503);
  t.deepEqual(logged, [['debug', { code: 'EI_MODEL_NOT_READY' }]]);
  const cause = new Error('boom');
  const internal = errorAnswer(cause, '/score', 'r2', log);
  t.is(internal.status, 500);
  t.deepEqual(logged[1], ['error', { err: cause, code: 'EI_INTERNAL' }]);
});
