/**
 * Finding 5/6 of issue 12: an entry script's late throw from a timer, or a promise rejection it left unhandled,
 * is logged with its cause in its worker and the module goes on; in the module itself a rejection nobody handled
 * is logged and it goes on (the last-resort handler), and an uncaught exception is logged as fatal and the
 * process exits with code 1, so that IoT Edge restarts it.
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

test('an entry script that throws late from a timer, and a rejection it leaves unhandled, are logged from its worker; the module goes on', async (t) => {
  const script = `
    export function init() {
      setTimeout(() => { throw new Error('late boom', { cause: new Error('the root of it') }); }, 300);
      Promise.reject(new Error('nobody waits for me'));
    }
    export function run() { return { ok: true }; }`;
  const folder = await makePackageFolder({ write: { 'score.mjs': script } });
  const program = await startProgram(['--model', folder, '--name', 'late', '--store', await mkdtemp(path.join(tmpdir(), 'edge-infer-store-'))]);
  try {
    const thrown = await program.waitForLog((l) => l.code === 'EI_SCRIPT_CRASHED');
    t.is(thrown.level, 50);
    t.regex(JSON.stringify(thrown.err), /late boom/);
    t.regex(JSON.stringify(thrown), /the root of it/, 'the cause is logged');
    const rejected = await program.waitForLog((l) => l.code === 'EI_SCRIPT_FAILED' && /nobody waits for me/.test(JSON.stringify(l.err)));
    t.is(rejected.level, 50);
    t.is(program.child.exitCode, null, 'still running');
    t.deepEqual(await (await postJson(`${program.url}/models/late/score`, {})).json(), { ok: true });
  } finally {
    t.is(await program.stop(), 0);
  }
});

/** Runs `body` in a process with the module's last-resort handler; resolves with its exit code and log lines. */
async function withLastResort(body: string, stopAfterMs?: number): Promise<{ code: number | null; logs: Array<Record<string, unknown>> }> {
  const dist = path.dirname(fileURLToPath(import.meta.url));
  const child = path.join(await mkdtemp(path.join(tmpdir(), 'edge-infer-last-resort-')), 'module.mjs');
  await writeFile(
    child,
    `import { installLastResort } from ${JSON.stringify(path.join(dist, '../src/last-resort.js'))};
     import { createLogger } from ${JSON.stringify(path.join(dist, '../src/log.js'))};
     installLastResort(createLogger('info'));
     const alive = setInterval(() => {}, 1000);
     ${stopAfterMs !== undefined ? `setTimeout(() => clearInterval(alive), ${stopAfterMs});` : ''}
     ${body}`,
  );
  const run = spawn(process.execPath, [child], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  run.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
  return { code, logs: stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>) };
}

test("a rejection nobody handled in the module's own code is logged with its cause and the module goes on", async (t) => {
  const { code, logs } = await withLastResort(`Promise.reject(new Error('forgotten', { cause: new Error('the root of it') }));`, 300);
  t.is(code, 0, 'it ran until it ended by itself');
  const logged = logs.find((l) => l.lastResort === 'an unhandled promise rejection');
  t.is(logged?.level, 50);
  t.regex(JSON.stringify(logged), /forgotten/);
  t.regex(JSON.stringify(logged), /the root of it/);
});

test("an uncaught exception from the module's own code is logged as fatal and exits with code 1", async (t) => {
  const { code, logs } = await withLastResort(`setTimeout(() => { throw new Error('our own bug'); }, 50);`);
  t.is(code, 1);
  const fatal = logs.find((l) => l.level === 60);
  t.truthy(fatal, JSON.stringify(logs));
  t.regex(JSON.stringify(fatal!.err), /our own bug/);
});
