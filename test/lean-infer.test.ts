/**
 * The OIP infer route is served twice: on the lean path (lean-infer.ts) for requests that come over a socket,
 * and on fastify's route for everything the lean path leaves (and for inject(), which never passes the server).
 * Every answer, header and metric must be the same on both; this holds them side by side.
 */
import test from 'ava';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { leanInferTarget } from '../src/server/lean-infer.js';
import { startService, type TestService } from './support/service.js';

const KEY = 'lean-key';
const MAX_BODY = 2 * 1024 * 1024;
const SHAPE = [1, 256, 256, 3];
const ANSWER_HEADERS_NOT_COMPARED = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

let service: TestService;
test.before(async () => {
  service = await startService({ keys: [KEY], maxBody: MAX_BODY });
});
test.after.always(() => service?.close());

interface Exchange {
  url: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Sent over the socket without a Content-Length, in 64 KiB chunks (`Transfer-Encoding: chunked`). */
  chunked?: boolean;
}

/** A request body as a stream of 64 KiB chunks, so that fetch sends it chunked. */
function inChunks(body: Buffer): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= body.length) return controller.close();
      controller.enqueue(new Uint8Array(body.subarray(offset, (offset += 65536))));
    },
  });
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** What the request changed in the per-request metrics. */
  metrics: Record<string, number>;
}

/** The per-request series of `/metrics` (counters and histogram counts), by their full label set. */
async function requestSeries(): Promise<Map<string, number>> {
  const text = (await service.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${KEY}` } })).body;
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (/^edge_infer_(requests_total|request_duration_seconds_count|auth_failures_total)/.test(line)) {
      const cut = line.lastIndexOf(' ');
      series.set(line.slice(0, cut), Number(line.slice(cut + 1)));
    }
  }
  return series;
}

async function measured(send: () => Promise<Omit<Answer, 'metrics'>>): Promise<Answer> {
  const before = await requestSeries();
  const answer = await send();
  const metrics: Record<string, number> = {};
  for (const [name, value] of await requestSeries()) if (value !== (before.get(name) ?? 0)) metrics[name] = value - (before.get(name) ?? 0);
  return { ...answer, metrics };
}

function compared(headers: Iterable<[string, string]>): Record<string, string> {
  return Object.fromEntries([...headers].filter(([name]) => !ANSWER_HEADERS_NOT_COMPARED.has(name)).sort(([a], [b]) => a.localeCompare(b)));
}

const overSocket = (exchange: Exchange) =>
  measured(async () => {
    const body = exchange.body && (exchange.chunked ? inChunks(exchange.body) : new Uint8Array(exchange.body));
    const response = await fetch(`${service.url}${exchange.url}`, { method: 'POST', headers: exchange.headers, body, duplex: 'half' } as RequestInit);
    return { status: response.status, headers: compared(response.headers), body: Buffer.from(await response.arrayBuffer()).toString('latin1') };
  });

const throughFastify = (exchange: Exchange) =>
  measured(async () => {
    const response = await service.app.inject({ method: 'POST', url: exchange.url, headers: exchange.headers, payload: exchange.body });
    return { status: response.statusCode, headers: compared(Object.entries(response.headers).map(([k, v]) => [k, String(v)])), body: response.rawPayload.toString('latin1') };
  });

/** A binary infer request for the face model: pseudo-random pixels, the header's outputs as given. */
function binaryRequest(outputs: unknown[], inputName = 'input:0'): { body: Buffer; headers: Record<string, string> } {
  const pixels = new Float32Array(SHAPE.reduce((a, b) => a * b));
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.sin(i) * 0.9;
  const bytes = Buffer.from(pixels.buffer);
  const header = Buffer.from(JSON.stringify({ id: 'same-id', inputs: [{ name: inputName, shape: SHAPE, datatype: 'FP32', parameters: { binary_data_size: bytes.length } }], outputs }));
  return { body: Buffer.concat([header, bytes]), headers: { 'inference-header-content-length': String(header.length) } };
}

const auth = { authorization: `Bearer ${KEY}` };

test('only plain infer paths take the lean path; the rest is left to fastify', (t) => {
  t.deepEqual(leanInferTarget('POST', '/v2/models/face/infer'), { name: 'face', version: undefined });
  t.deepEqual(leanInferTarget('POST', '/v2/models/face/versions/1.2.0-rc/infer'), { name: 'face', version: '1.2.0-rc' });
  for (const url of [
    '/v2/models/face/infer?x=1',
    '/v2/models/face/infer/',
    '/v2/models/fa%63e/infer',
    '/v2/models/__proto__/infer',
    '/v2/models/constructor/versions/1/infer',
    `/v2/models/${'a'.repeat(65)}/infer`,
    '/v2//models/face/infer',
    '/v2/models/face/versions//infer',
    '/v2/models/face/versions/a+b/infer',
    '/v2/models/face',
    '/score',
  ]) {
    t.is(leanInferTarget('POST', url), undefined, url);
  }
  t.is(leanInferTarget('GET', '/v2/models/face/infer'), undefined);
});

test.serial('the lean path and fastify give the same status, headers, body and metrics for every kind of answer', async (t) => {
  const jsonOut = binaryRequest([{ name: 'Identity:0' }]);
  const binaryOut = binaryRequest([{ name: 'Identity:0', parameters: { binary_data: true } }, { name: 'Identity_1:0' }]);
  const wrongInput = binaryRequest([], 'nope:0');
  const id = (n: string) => ({ 'x-request-id': `lean-${n}` });
  const cases: Array<[string, Exchange]> = [
    ['JSON answer', { url: '/v2/models/face/infer', headers: { ...auth, ...id('a'), ...jsonOut.headers }, body: jsonOut.body }],
    ['binary answer', { url: '/v2/models/face/infer', headers: { ...auth, ...id('b'), ...binaryOut.headers, 'content-type': 'application/octet-stream' }, body: binaryOut.body }],
    ['a chunked body', { url: '/v2/models/face/infer', headers: { ...auth, ...id('n'), ...binaryOut.headers }, body: binaryOut.body, chunked: true }],
    ['the active version by name', { url: `/v2/models/face/versions/${BUNDLED_MODEL.version}/infer`, headers: { ...auth, ...id('c'), ...jsonOut.headers }, body: jsonOut.body }],
    ['a version not loaded', { url: '/v2/models/face/versions/9/infer', headers: { ...auth, ...id('d'), ...jsonOut.headers }, body: jsonOut.body }],
    ['a model that is not served', { url: '/v2/models/nobody/infer', headers: { ...auth, ...id('e'), ...jsonOut.headers }, body: jsonOut.body }],
    ['no body', { url: '/v2/models/face/infer', headers: { ...auth, ...id('f') } }],
    ['a header length that is not a number', { url: '/v2/models/face/infer', headers: { ...auth, ...id('g'), 'inference-header-content-length': 'ten' }, body: jsonOut.body }],
    ['a header length past the body', { url: '/v2/models/face/infer', headers: { ...auth, ...id('h'), 'inference-header-content-length': String(jsonOut.body.length + 5) }, body: jsonOut.body }],
    ['not JSON', { url: '/v2/models/face/infer', headers: { ...auth, ...id('i'), 'content-type': 'application/json' }, body: Buffer.from('{"inputs": [') }],
    ['an input the model does not have', { url: '/v2/models/face/infer', headers: { ...auth, ...id('j'), ...wrongInput.headers }, body: wrongInput.body }],
    ['a body over the limit', { url: '/v2/models/face/infer', headers: { ...auth, ...id('k') }, body: Buffer.alloc(MAX_BODY + 1, 0x20) }],
    ['no key', { url: '/v2/models/face/infer', headers: { ...id('l'), ...jsonOut.headers }, body: jsonOut.body }],
    ['a wrong key', { url: '/v2/models/face/infer', headers: { authorization: 'Bearer guess', ...id('m'), ...jsonOut.headers }, body: jsonOut.body }],
  ];
  const statuses: number[] = [];
  for (const [what, exchange] of cases) {
    const lean = await overSocket(exchange);
    const fastify = await throughFastify(exchange);
    t.deepEqual(lean, fastify, what);
    statuses.push(lean.status);
  }
  // The cases above reach every kind of answer, so the comparison is not of two alike failures.
  t.deepEqual(statuses, [200, 200, 200, 200, 404, 404, 400, 400, 400, 400, 422, 413, 401, 401]);
});

test.serial('a throttled address gets the same 429 and Retry-After on both paths', async (t) => {
  const exchange = { url: '/v2/models/face/infer', headers: { authorization: 'Bearer guess', 'x-request-id': 'lean-throttle' } };
  for (let i = 0; i < 10; i++) await fetch(`${service.url}${exchange.url}`, { method: 'POST', headers: exchange.headers });
  const lean = await overSocket(exchange);
  const fastify = await throughFastify(exchange);
  t.is(lean.status, 429);
  // The wait counts down the window in whole seconds, so the two may straddle a second.
  t.true(Math.abs(Number(lean.headers['retry-after']) - Number(fastify.headers['retry-after'])) <= 1);
  const withoutWait = (answer: Answer) => ({ ...answer, headers: { ...answer.headers, 'retry-after': 'n' }, body: answer.body.replace(/\d+ s"/, 'n s"') });
  t.deepEqual(withoutWait(lean), withoutWait(fastify));
});
