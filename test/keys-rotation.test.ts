/**
 * Keys rotated without a restart: the real program with `--keys-file` while clients keep sending requests,
 * the file going from A to A+B to B; and the slow-down of an address that keeps sending wrong keys.
 */
import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import Fastify from 'fastify';
import { createKeyGate, FailureThrottle, installKeyAuth } from '../src/server/auth.js';
import { installErrorHandling } from '../src/server/http-errors.js';
import { startProgram } from './support/program.js';

const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-fedcba9876543210';

/** Sends requests with `key()` back to back (two at a time) until stopped; lists the statuses of those refused. */
function loadLoop(url: string, key: () => string): { stop(): Promise<{ sent: number; refused: number[] }> } {
  let running = true;
  let sent = 0;
  const refused: number[] = [];
  const client = async () => {
    while (running) {
      const response = await fetch(`${url}/v2`, { headers: { authorization: `Bearer ${key()}` } });
      await response.arrayBuffer();
      sent++;
      if (response.status !== 200) refused.push(response.status);
    }
  };
  const clients = Promise.all([client(), client()]);
  return {
    stop: async () => {
      running = false;
      await clients;
      return { sent, refused };
    },
  };
}

/** Replaces the file as a secret mount or a careful operator does: a new file renamed over the old. */
async function replaceFile(file: string, text: string): Promise<void> {
  await writeFile(`${file}.new`, text);
  await rename(`${file}.new`, file);
}

test('the keys file changes under load: A, then A+B, then B; no request with a valid key fails, and A is refused once removed', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-keys-'));
  const file = path.join(dir, 'keys');
  await writeFile(file, `${KEY_A}\n`);
  const program = await startProgram(['--keys-file', file, '--store', path.join(dir, 'store')]);
  try {
    const changed = (count: number) => program.waitForLog((l) => l.msg === `the keys file changed: ${count} keys are valid now`, 10_000);
    const loopA = loadLoop(program.url, () => KEY_A);
    await replaceFile(file, `# rotation under way\n${KEY_A}\n${KEY_B}\n`);
    await changed(2);
    // The clients move over to B while A still works.
    const loopB = loadLoop(program.url, () => KEY_B);
    const a = await loopA.stop();
    t.true(a.sent > 0);
    t.deepEqual(a.refused, [], 'no request with A failed while A was valid');

    // An edit in place (write, not rename) is followed as well.
    await writeFile(file, `${KEY_B}\n`);
    await changed(1);
    const refusedA = await fetch(`${program.url}/v2`, { headers: { authorization: `Bearer ${KEY_A}` } });
    t.is(refusedA.status, 401);
    t.is(((await refusedA.json()) as { error: string }).error, 'A scoring key is required: send the header "Authorization: Bearer <key>"');

    // A half-written (empty) file changes nothing: B stays valid.
    await writeFile(file, '');
    await program.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('the keys file holds no key; the 1 keys in force stay'), 10_000);
    const b = await loopB.stop();
    t.true(b.sent > 0);
    t.deepEqual(b.refused, [], 'no request with B failed, from its first to its last');
    t.log(`${a.sent} requests with A, ${b.sent} with B, none refused`);
    t.is((await fetch(`${program.url}/v2`)).status, 401, 'an empty file does not open the API');
    t.false(program.lines.some((l) => JSON.stringify(l).includes(KEY_A) || JSON.stringify(l).includes(KEY_B)), 'no key in the log');
  } finally {
    await program.stop();
  }
});

async function guardedApp(throttle: FailureThrottle) {
  const app = Fastify();
  installErrorHandling(app, 1024);
  installKeyAuth(app, createKeyGate(['good-key'], () => undefined, throttle));
  app.get('/', async () => 'open');
  app.get('/data', async () => 'data');
  await app.ready();
  return app;
}

test('an address with 10 wrong keys in a window gets 429 with Retry-After, whatever it sends; others and open routes do not', async (t) => {
  let now = 0;
  const app = await guardedApp(new FailureThrottle(10, 60_000, 100, () => now));
  const get = (address: string, key?: string, url = '/data') => app.inject({ url, remoteAddress: address, headers: key ? { authorization: `Bearer ${key}` } : {} });
  for (let i = 0; i < 10; i++) t.is((await get('10.0.0.9', `guess-${i}`)).statusCode, 401);
  now = 15_000;
  const throttled = await get('10.0.0.9', 'good-key');
  t.is(throttled.statusCode, 429, 'the right key does not tell a throttled address it guessed right');
  t.is(throttled.headers['retry-after'], '45');
  t.is((throttled.json() as { error: { code: string } }).error.code, 'EI_TOO_MANY_KEY_FAILURES');
  t.is((await get('10.0.0.8', 'good-key')).statusCode, 200, 'another address is not slowed');
  t.is((await get('10.0.0.9', undefined, '/')).statusCode, 200, 'open routes stay open');
  for (let i = 0; i < 20; i++) t.is((await get('10.0.0.7')).statusCode, 401, 'no key is no guess: it is refused, never slowed');
  now = 60_000;
  t.is((await get('10.0.0.9', 'good-key')).statusCode, 200, 'the window over, the address may try again');
  await app.close();
});

test('the throttle tracks a bounded number of addresses', async (t) => {
  const throttle = new FailureThrottle(1, 60_000, 100);
  const app = await guardedApp(throttle);
  for (let i = 0; i < 1000; i++) await app.inject({ url: '/data', remoteAddress: `10.1.${i >> 8}.${i & 255}`, headers: { authorization: `Bearer guess-${i}` } });
  t.is(throttle.tracked, 100);
  t.is((await app.inject({ url: '/data', remoteAddress: '10.1.3.231', headers: { authorization: 'Bearer good-key' } })).statusCode, 429, 'the latest addresses are the ones kept');
  await app.close();
});
