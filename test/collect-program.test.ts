/**
 * Data collection in the real program (`node dist/src/main.js --desired FILE`), as a device runs it: the desired
 * file asks for collection with a SAS URL to Azurite; a later file with a bad `collect` section is refused on the
 * path every desired-state problem takes (GET /status `desired.error`, an error log line), the module goes on
 * serving and collecting with the settings it had, and the SAS never appears in its output.
 */
import { mkdtemp, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { startAzurite } from './support/azurite.js';
import { photo } from './support/fixtures.js';
import { startProgram } from './support/program.js';
import { until } from './support/until.js';

interface Status {
  desired: { error: string | null };
  runtime: { collect?: { state: string; kept: number; uploadedFiles: number; pendingFiles: number } };
}

test('a bad collect section is refused with its path, and the module keeps serving and collecting as before', async (t) => {
  const azurite = await startAzurite();
  t.teardown(() => azurite.close());
  const { client, sasUrl } = await azurite.container('program');
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-collect-program-'));
  const desired = path.join(dir, 'desired.json');
  let written = Date.now() / 1000;
  const desire = async (document: unknown) => {
    await writeFile(desired, JSON.stringify(document));
    // The watcher compares modification times: each write a second later than the last.
    written += 1;
    await utimes(desired, written, written);
  };
  await desire({ collect: { mode: 'all', upload: { sasUrl } } });
  const program = await startProgram(['--desired', desired, '--store', path.join(dir, 'store'), '--log-level', 'debug']);
  t.teardown(() => program.stop().then(() => undefined));
  const status = async () => (await (await fetch(`${program.url}/status`)).json()) as Status;
  const score = async (n: number) => (await fetch(`${program.url}/score`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: new Uint8Array(await photo(n)) })).status;

  await until(async () => (await fetch(`${program.url}/v2/health/ready`)).status === 200, 'the bundled model ready');
  t.is(await score(1), 200);
  // The index file closes after a minute (the device's default); the input and output go at once.
  await until(async () => ((await status()).runtime.collect?.uploadedFiles ?? 0) >= 2, 'input and output uploaded', { describe: status });

  await desire({ collect: { mode: 'sample', upload: { sasUrl } } });
  await until(async () => (await status()).desired.error !== null, 'the refusal in the status', { describe: status });
  t.regex((await status()).desired.error!, /\/collect\/sampleRate: required with mode "sample"$/);
  await program.waitForLog((line) => line.code === 'EI_DESIRED_INVALID');

  t.is(await score(2), 200, 'still serving');
  const inputs = async () => [...(await azurite.blobs(client)).keys()].filter((name) => name.endsWith('-input.jpg')).length;
  await until(async () => (await inputs()) === 2, 'the next call collected as before, and uploaded', { describe: status });

  const signature = new URL(sasUrl).searchParams.get('sig')!;
  t.false(JSON.stringify(program.lines).includes(signature), 'the SAS never reaches the log');
  t.false(JSON.stringify(await status()).includes(signature), 'nor the status');
});
