/**
 * Finding 11 of issue 12: a hash mismatch on a local file must not tell the file's real sha256 (a hash oracle
 * for any file the module reads, /proc/self/environ included); failed key attempts are counted and logged,
 * rate-limited, with the client's address; `HEAD /` is as open as `GET /`.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { get } from 'node:http';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { FAILURES_BEFORE_THROTTLE } from '../src/server/auth.js';
import { startProgram } from './support/program.js';
import { startService } from './support/service.js';

test('EI_HASH_MISMATCH for a file:// URI says it mismatched, not what the file hashes to', async (t) => {
  const service = await startService({ models: [] });
  try {
    const secret = path.join(await mkdtemp(path.join(tmpdir(), 'edge-infer-secret-')), 'environ');
    await writeFile(secret, 'EDGE_INFER_KEYS=guess-me\n');
    const real = createHash('sha256').update(await readFile(secret)).digest('hex');
    t.false(await service.deploy({ name: 'probe', version: '1', uri: pathToFileURL(secret).href, sha256: 'a'.repeat(64) }));
    const error = service.status.model('probe')!.error!;
    t.is(error.code, 'EI_HASH_MISMATCH');
    t.false(error.message.includes(real), error.message);
    t.regex(error.message, /not shown for a local file/);
  } finally {
    await service.close();
  }
});

test('failed key attempts are counted, logged at warn with the client address at most once a minute; HEAD / is open', async (t) => {
  const program = await startProgram([], { EDGE_INFER_KEYS: 'right-key', LOG_LEVEL: 'info' });
  try {
    // Every other attempt sends a wrong key: ten wrong keys, the throttle's limit (no key does not count there).
    const attempts = 2 * FAILURES_BEFORE_THROTTLE - 1;
    for (let i = 0; i < attempts; i++) {
      const headers: Record<string, string> = i % 2 === 0 ? { authorization: `Bearer wrong-${i}` } : {};
      t.is((await fetch(`${program.url}/status`, { headers })).status, 401);
    }
    // Past the limit the address is slowed down (keys-rotation.test.ts); another loopback address reads the metrics.
    t.is((await fetch(`${program.url}/status`, { headers: { authorization: 'Bearer right-key' } })).status, 429);
    const metrics = await new Promise<string>((resolve, reject) => {
      get(`${program.url}/metrics`, { localAddress: '127.0.0.2', headers: { authorization: 'Bearer right-key' } }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve(text));
      }).on('error', reject);
    });
    t.regex(metrics, new RegExp(`^edge_infer_auth_failures_total ${attempts}$`, 'm'));
    const warnings = program.lines.filter((line) => line.level === 40 && typeof line.msg === 'string' && line.msg.startsWith('a request was refused'));
    t.is(warnings.length, 1, 'one line for the burst, not one per attempt');
    t.is(warnings[0]!.client, '127.0.0.1');
    t.false(JSON.stringify(program.lines).includes('wrong-0'), 'the key tried is never logged');

    const head = await fetch(`${program.url}/`, { method: 'HEAD' });
    t.is(head.status, 200);
    t.is((await fetch(`${program.url}/`)).status, 200);
  } finally {
    await program.stop();
  }
});
