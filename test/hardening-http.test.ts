/**
 * Finding 8 of issue 12: bad input answers 4xx with our error body, never 500 or fastify's own body; a model
 * URI that is a device and a store that cannot be written fail with codes that say so, not EI_INTERNAL.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import test from 'ava';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { startFileServer } from './support/file-server.js';
import { makePackageFolder, tarGz } from './support/packages.js';
import { startService, type TestService } from './support/service.js';
import { mountTmpfs } from './support/tmpfs.js';

// Mounted before any test is declared (ava wants them declared synchronously after this).
const readOnly = await mountTmpfs('1m', true);
const onReadOnlyStore = readOnly ? test.serial : test.serial.skip;

let service: TestService;
test.before(async () => {
  service = await startService();
});
test.after.always(async () => {
  await service?.close();
  await readOnly?.unmount();
});

/** Sends `head` (and `body`) as written, on a socket of its own, and returns the status and the parsed body. */
function rawRequest(head: string, body = ''): Promise<{ status: number; body: unknown }> {
  const { port } = new URL(service.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.end(`${head}\r\nConnection: close\r\n${body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n${body}`));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => {
      const statusLine = answer.slice(0, answer.indexOf('\r\n'));
      const text = answer.slice(answer.indexOf('\r\n\r\n') + 4);
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: the test's assertion on the body says so
      }
      resolve({ status: Number(statusLine.split(' ')[1]), body: parsed });
    });
  });
}

function isOurs(body: unknown, code = 'EI_BAD_REQUEST'): boolean {
  const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
  return typeof error === 'object' && error?.code === code && typeof error.message === 'string' && Object.keys(body as object).length === 1;
}
function isOipError(body: unknown): boolean {
  return typeof (body as { error?: unknown }).error === 'string' && Object.keys(body as object).length === 1;
}

test('a malformed URL, an over-long name and bytes that are not HTTP answer 400 with our error body', async (t) => {
  for (const head of ['GET /models/%E0%A4%A/score HTTP/1.1\r\nHost: x', `POST /models/${'n'.repeat(300)}/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json`, 'GET / HTTP/1.1\r\nHost: x\r\nthis is no header']) {
    const answer = await rawRequest(head, head.startsWith('POST') ? '{}' : '');
    t.is(answer.status, 400, head);
    t.true(isOurs(answer.body), `${head}: ${JSON.stringify(answer.body)}`);
  }
});

test('Inference-Header-Content-Length that is not a number answers 400, not 500', async (t) => {
  for (const value of ['abc', 'NaN', '-5', '1e3', '']) {
    const response = await fetch(`${service.url}/v2/models/face/infer`, { method: 'POST', headers: { 'inference-header-content-length': value }, body: '{}' });
    t.is(response.status, 400, value);
    t.true(isOipError(await response.json()), value);
  }
});

test('JSON nested 20,000 deep answers 400 on /score and on OIP infer, and the service goes on', async (t) => {
  const deep = '['.repeat(20_000) + ']'.repeat(20_000);
  const score = await fetch(`${service.url}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"data":${deep}}` });
  t.is(score.status, 400);
  const body = await score.json();
  t.true(isOurs(body), JSON.stringify(body));
  const infer = await fetch(`${service.url}/v2/models/face/infer`, {
    method: 'POST',
    body: `{"inputs":[{"name":"input:0","datatype":"FP32","shape":[1],"data":${deep}}]}`,
  });
  t.is(infer.status, 400);
  t.true(isOipError(await infer.json()));
  // Ordinary nesting (a rank-4 tensor) still goes through to the model: 422 for the wrong shape, not 400.
  const shallow = await fetch(`${service.url}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":[[[[1]]]]}' });
  t.is(shallow.status, 422);
});

test('a model URI that is a device (file:///dev/zero) fails with EI_PACKAGE_INVALID and the version before keeps serving', async (t) => {
  t.false(await service.deploy({ name: 'face', version: 'zero', uri: 'file:///dev/zero' }));
  const status = service.status.model('face')!;
  t.is(status.error?.code, 'EI_PACKAGE_INVALID');
  t.regex(status.error!.message, /neither a file nor a folder/);
  t.is(status.version, BUNDLED_MODEL.version);
});

onReadOnlyStore('a read-only store fails downloads and unpacks with EI_STORE_UNWRITABLE', async (t) => {
  const files = await startFileServer();
  const onReadOnly = await startService({ storeDir: readOnly!.dir, models: [] });
  try {
    const bytes = await readFile(BUNDLED_MODEL.uri);
    files.files.set('/face.onnx', { body: bytes });
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const archive = await tarGz(await makePackageFolder({ copy: { 'face.onnx': BUNDLED_MODEL.uri } }));
    for (const uri of [`${files.url}/face.onnx`, archive]) {
      const ok = await onReadOnly.deploy({ name: 'face', version: '1', uri, ...(uri.startsWith('http') ? { sha256 } : {}), settings: BUNDLED_MODEL.settings });
      t.false(ok, uri);
      t.is(onReadOnly.status.model('face')?.error?.code, 'EI_STORE_UNWRITABLE', onReadOnly.status.model('face')?.error?.message);
    }
  } finally {
    await onReadOnly.close();
    await files.close();
  }
});
