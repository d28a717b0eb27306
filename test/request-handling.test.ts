import test from 'ava';
import { photo, postImage } from './support/fixtures.js';
import { startService, type TestService } from './support/service.js';

const KEYS = ['first-key-0123456789', 'second-key-abcdefghij'];

let service: TestService;
test.before(async () => {
  service = await startService({ keys: KEYS, corsOrigins: ['https://dashboard.example'] });
});
test.after.always(() => service?.close());

test('GET / answers Healthy without a key', async (t) => {
  const response = await fetch(`${service.url}/`);
  t.is(response.status, 200);
  t.is(await response.text(), 'Healthy');
});

test('health probes are open; everything else needs a key', async (t) => {
  t.is((await fetch(`${service.url}/v2/health/live`)).status, 200);
  t.is((await fetch(`${service.url}/v2/health/ready`)).status, 200);
  for (const path of ['/status', '/metrics', '/swagger.json', '/v2', '/v2/models/face']) {
    const response = await fetch(`${service.url}${path}`);
    t.is(response.status, 401, path);
  }
});

test('401 without a key or with a wrong one, 200 with either of two keys', async (t) => {
  const image = await photo(1);
  const none = await postImage(`${service.url}/score`, image);
  t.is(none.status, 401);
  t.is(none.headers.get('www-authenticate'), 'Bearer');
  t.is(((await none.json()) as { error: { code: string } }).error.code, 'EI_UNAUTHORIZED');
  t.is((await postImage(`${service.url}/score`, image, 'image/jpeg', { authorization: 'Bearer wrong-key' })).status, 401);
  t.is((await postImage(`${service.url}/score`, image, 'image/jpeg', { authorization: `Basic ${KEYS[0]}` })).status, 401);
  for (const key of KEYS) {
    const response = await postImage(`${service.url}/score`, image, 'image/jpeg', { authorization: `Bearer ${key}` });
    t.is(response.status, 200, key);
  }
});

test('x-request-id and x-ms-request-id are echoed, or one id is made for both', async (t) => {
  const auth = { authorization: `Bearer ${KEYS[0]}` };
  const echoed = await fetch(`${service.url}/status`, { headers: { ...auth, 'x-request-id': 'abc-123' } });
  t.is(echoed.headers.get('x-request-id'), 'abc-123');
  t.is(echoed.headers.get('x-ms-request-id'), 'abc-123');
  const older = await fetch(`${service.url}/status`, { headers: { ...auth, 'x-ms-request-id': 'ms-456' } });
  t.is(older.headers.get('x-request-id'), 'ms-456');
  const made = await fetch(`${service.url}/nowhere`, { headers: auth });
  t.regex(made.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  t.is(made.headers.get('x-ms-request-id'), made.headers.get('x-request-id'));
  const unsafe = await fetch(`${service.url}/status`, { headers: { ...auth, 'x-request-id': 'a b\tc' } });
  t.not(unsafe.headers.get('x-request-id'), 'a b\tc', 'an id that could forge a log line is replaced');
});

test('CORS answers the configured origin, preflight included, and no other', async (t) => {
  const preflight = await fetch(`${service.url}/score`, {
    method: 'OPTIONS',
    headers: { origin: 'https://dashboard.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
  });
  t.true(preflight.status < 300);
  t.is(preflight.headers.get('access-control-allow-origin'), 'https://dashboard.example');
  const other = await fetch(`${service.url}/`, { headers: { origin: 'https://elsewhere.example' } });
  t.is(other.headers.get('access-control-allow-origin'), null);
});

test('GET /status and GET /metrics report the model and the requests it answered', async (t) => {
  const auth = { authorization: `Bearer ${KEYS[1]}` };
  await postImage(`${service.url}/score`, await photo(2), 'image/jpeg', auth);
  const status = (await (await fetch(`${service.url}/status`, { headers: auth })).json()) as {
    models: Record<string, { status: string; version: string }>;
    counters: { requests: Record<string, { ok: number }> };
  };
  t.is(status.models.face?.status, 'active');
  t.regex(status.models.face?.version ?? '', /^blazeface-back-256@/);
  t.true((status.counters.requests.face?.ok ?? 0) >= 1);
  const metrics = await (await fetch(`${service.url}/metrics`, { headers: auth })).text();
  t.regex(metrics, /edge_infer_requests_total\{route="\/score",model="face",code="200"\} \d+/);
  t.regex(metrics, /edge_infer_inference_duration_seconds_count\{model="face",version="blazeface-back-256@[^"]+"\} \d+/);
  t.regex(metrics, /edge_infer_model_active\{model="face",version="[^"]+",status="active"\} 1/);
});
