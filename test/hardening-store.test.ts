/**
 * Finding 7 of issue 12 (the store's part): a state file of the wrong shape or cut short is set aside and the
 * module starts (it exited 1 on every start); a download killed mid-way resumes after the restart (the restore
 * collected its .partial, so it started over); unpacks a kill left half done are collected at start.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { ModelStore } from '../src/models/store.js';
import { ocrClassifierPath } from './support/fixtures.js';
import { startFileServer } from './support/file-server.js';
import { startProgram } from './support/program.js';
import { startService } from './support/service.js';
import { until } from './support/until.js';

const storeDir = () => mkdtemp(path.join(tmpdir(), 'edge-infer-store-'));

for (const [what, text] of [
  ['a wrong-shaped', '{"models":{"face":{}}}'],
  ['a truncated', '{"models":{"face":{"active":{"version":"1","pa'],
  ['a reserved-name', '{"models":{"__proto__":{"active":{"version":"1","path":"/x"},"previous":[]}}}'],
] as const) {
  test(`${what} state.json is set aside as state.json.bad-<time>; the module starts and serves`, async (t) => {
    const store = await storeDir();
    await writeFile(path.join(store, 'state.json'), text);
    const program = await startProgram(['--store', store]);
    try {
      const warning = await program.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('state.json '));
      t.is(warning.level, 40);
      t.regex(warning.msg as string, /set aside as state\.json\.bad-/);
      await program.waitForLog((l) => l.msg === 'model version active');
      t.is((await fetch(`${program.url}/v2/health/ready`)).status, 200);
      const files = await readdir(store);
      const aside = files.find((f) => f.startsWith('state.json.bad-'));
      t.truthy(aside, files.join(', '));
      t.is(await readFile(path.join(store, aside!), 'utf8'), text, 'the bad file is kept as it was, for a look');
    } finally {
      t.is(await program.stop(), 0);
    }
  });
}

test('an unpack a killed process left half done (packages/<sha>.partial-<pid>) is removed when the store opens', async (t) => {
  const store = await storeDir();
  const orphan = path.join(store, 'packages', `${'c'.repeat(64)}.partial-4242`);
  await mkdir(path.join(orphan, 'inner'), { recursive: true });
  await writeFile(path.join(orphan, 'inner', 'half.onnx'), 'half');
  await new ModelStore(store).open();
  t.deepEqual(await readdir(path.join(store, 'packages')), []);
});

test('a download killed mid-way (kill -9) resumes with Range after the restart instead of starting over', async (t) => {
  const server = await startFileServer();
  const bytes = await readFile(ocrClassifierPath);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  // The first answer sends half and then nothing: the process is killed while it waits for more.
  server.files.set('/cls.onnx', { body: bytes, fault: 'stall-once' });
  const store = await storeDir();
  const desired = path.join(store, '..', `${path.basename(store)}-desired.json`);
  await writeFile(
    desired,
    JSON.stringify({
      models: {
        face: { version: '1', uri: BUNDLED_MODEL.uri, ...BUNDLED_MODEL.settings },
        cls: { version: '1', uri: `${server.url}/cls.onnx`, sha256, image: { width: 192, height: 48 } },
      },
    }),
  );
  const partial = path.join(store, 'blobs', sha256, 'cls.onnx.partial');
  try {
    const first = await startProgram(['--store', store, '--desired', desired]);
    await until(async () => (await stat(partial).catch(() => undefined))?.size === bytes.length >> 1, 'half the download on disk');
    await first.waitForLog((l) => l.msg === 'model version active' && l.model === 'face');
    first.child.kill('SIGKILL');
    await first.stop();

    const second = await startProgram(['--store', store, '--desired', desired]);
    try {
      await second.waitForLog((l) => l.msg === 'model version active' && l.model === 'cls', 60_000);
      const asked = server.requests.filter((r) => r.startsWith('/cls.onnx'));
      t.deepEqual(asked, ['/cls.onnx -', `/cls.onnx bytes=${bytes.length >> 1}-`]);
    } finally {
      await second.stop();
    }
  } finally {
    await server.close();
  }
});

test('state.json names content relative to the store: a store moved to another folder serves offline', async (t) => {
  const server = await startFileServer();
  const bytes = await readFile(BUNDLED_MODEL.uri);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  server.files.set('/face.onnx', { body: bytes });
  const first = await storeDir();
  const desired = path.join(first, '..', `${path.basename(first)}-desired.json`);
  await writeFile(desired, JSON.stringify({ models: { face: { version: '7', uri: `${server.url}/face.onnx`, sha256, ...BUNDLED_MODEL.settings } } }));
  const before = await startProgram(['--store', first, '--desired', desired]);
  await before.waitForLog((l) => l.msg === 'model version active' && l.version === '7');
  await until(async () => (await readFile(path.join(first, 'state.json'), 'utf8').catch(() => '')).includes('"7"'), 'the version recorded in state.json');
  t.is(await before.stop(), 0);
  await server.close();
  const state = JSON.parse(await readFile(path.join(first, 'state.json'), 'utf8')) as { models: { face: { active: { path: string } } } };
  t.is(state.models.face.active.path, path.join('blobs', sha256, 'face.onnx'));
  // Another mount point for the same folder, and no network: the version comes from the store.
  const moved = `${first}-moved`;
  await rename(first, moved);
  const after = await startProgram(['--store', moved, '--desired', desired]);
  try {
    await after.waitForLog((l) => l.msg === 'model version active' && l.version === '7');
    const status = (await (await fetch(`${after.url}/status`)).json()) as { models: { face: { status: string; version: string } } };
    t.like(status.models.face, { status: 'active', version: '7' });
  } finally {
    t.is(await after.stop(), 0);
  }
});

test('the verified content of a version that then fails to load is removed from the store', async (t) => {
  const server = await startFileServer();
  const bytes = Buffer.from('these bytes are not an ONNX model'.repeat(100));
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  server.files.set('/broken.onnx', { body: bytes });
  const service = await startService({ models: [] });
  try {
    t.false(await service.deploy({ name: 'broken', version: '1', uri: `${server.url}/broken.onnx`, sha256 }));
    t.is(service.status.model('broken')?.error?.code, 'EI_MODEL_LOAD_FAILED');
    t.deepEqual(await readdir(path.join(service.storeDir, 'blobs')).catch(() => []), []);
  } finally {
    await service.close();
    await server.close();
  }
});
