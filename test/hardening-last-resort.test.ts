/**
 * Finding 5/6 of issue 12 (the last-resort handler): an entry script's late throw from a timer, or a promise
 * rejection nobody handled, is logged with its cause and the module goes on; an uncaught exception anywhere
 * else is logged and the process exits with code 1, so that IoT Edge restarts it.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { postJson } from './support/fixtures.js';
import { makePackageFolder } from './support/packages.js';
import { startProgram } from './support/program.js';

test('an entry script that throws late from a timer, and a rejection nobody handles, are logged; the module goes on', async (t) => {
  const script = `
    export function init() {
      setTimeout(() => { throw new Error('late boom', { cause: new Error('the root of it') }); }, 300);
      Promise.reject(new Error('nobody waits for me'));
    }
    export function run() { return { ok: true }; }`;
  const folder = await makePackageFolder({ write: { 'score.mjs': script } });
  const program = await startProgram(['--model', folder, '--name', 'late', '--store', await mkdtemp(path.join(tmpdir(), 'edge-infer-store-'))]);
  try {
    const thrown = await program.waitForLog((l) => l.lastResort === 'an uncaught exception');
    t.is(thrown.level, 50);
    t.regex(JSON.stringify(thrown.err), /late boom/);
    t.regex(JSON.stringify(thrown), /the root of it/, 'the cause is logged');
    const rejected = await program.waitForLog((l) => l.lastResort === 'an unhandled promise rejection');
    t.regex(JSON.stringify(rejected.err), /nobody waits for me/);
    t.is(program.child.exitCode, null, 'still running');
    t.deepEqual(await (await postJson(`${program.url}/models/late/score`, {})).json(), { ok: true });
  } finally {
    t.is(await program.stop(), 0);
  }
});

test("an uncaught exception from the module's own code is logged as fatal and exits with code 1", async (t) => {
  const dist = path.dirname(fileURLToPath(import.meta.url));
  const child = path.join(await mkdtemp(path.join(tmpdir(), 'edge-infer-last-resort-')), 'module.mjs');
  await writeFile(
    child,
    `import { installLastResort } from ${JSON.stringify(path.join(dist, '../src/last-resort.js'))};
     import { createLogger } from ${JSON.stringify(path.join(dist, '../src/log.js'))};
     installLastResort(createLogger('info'));
     setInterval(() => {}, 1000);
     setTimeout(() => { throw new Error('our own bug'); }, 50);`,
  );
  const run = spawn(process.execPath, [child], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  run.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
  t.is(code, 1);
  const fatal = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>).find((l) => l.level === 60);
  t.truthy(fatal, stdout);
  t.regex(JSON.stringify(fatal!.err), /our own bug/);
});
