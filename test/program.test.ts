import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ocrClassifierPath, photo, postImage } from './support/fixtures.js';
import { runProgram, startProgram } from './support/program.js';
import { until } from './support/until.js';

const store = () => mkdtemp(path.join(tmpdir(), 'edge-infer-store-'));

test('with no configuration, the program serves the bundled face detector and stops cleanly on SIGTERM', async (t) => {
  const program = await startProgram(['--store', await store(), '--log-level', 'debug']);
  try {
    const root = await fetch(`${program.url}/`);
    t.is(await root.text(), 'Healthy');
    await program.waitForLog((l) => l.msg === 'model version active');
    t.is((await fetch(`${program.url}/v2/health/ready`)).status, 200);
    const result = (await (await postImage(`${program.url}/score`, await photo(6))).json()) as { detections: unknown[] };
    t.is(result.detections.length, 4);
    const requestLog = await program.waitForLog((l) => l.msg === 'request' && l.url === '/score');
    t.is(requestLog.level, 20, 'request logs are at debug');
    t.is(requestLog.statusCode, 200);
    t.truthy(requestLog.reqId);
    t.false(/detections|keypoints|"data"/.test(JSON.stringify(program.lines)), 'no tensor or result data in the log');
  } finally {
    t.is(await program.stop(), 0);
  }
});

test('--model serves another model as the slot --name names, and /score answers for it', async (t) => {
  const program = await startProgram(['--store', await store(), '--model', ocrClassifierPath, '--name', 'direction']);
  try {
    await program.waitForLog((l) => l.msg === 'model version active');
    t.is((await fetch(`${program.url}/v2/models/direction/ready`)).status, 200);
    t.is((await fetch(`${program.url}/v2/models/face/ready`)).status, 404, 'the bundled detector answers only when nothing is named');
    const fill = (shape: number[]): unknown => (shape.length === 0 ? 0.1 : Array.from({ length: shape[0]! }, () => fill(shape.slice(1))));
    const response = await fetch(`${program.url}/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: fill([1, 3, 48, 192]) }) });
    const body = (await response.json()) as { outputs: Record<string, { shape: number[] }> };
    t.deepEqual(body.outputs['softmax_0.tmp_0']?.shape, [1, 2]);
  } finally {
    await program.stop();
  }
});

test('--model over http downloads the model, checks its sha256 and serves it', async (t) => {
  const bytes = await readFile(ocrClassifierPath);
  const server = createServer((_request, response) => response.end(bytes));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/models/cls.onnx?sig=secret`;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  try {
    const good = await startProgram(['--store', await store(), '--model', url, '--sha256', sha256]);
    await good.waitForLog((l) => l.msg === 'model version active');
    t.is((await fetch(`${good.url}/v2/models/cls/ready`)).status, 200);
    await good.stop();

    const wrong = await startProgram(['--store', await store(), '--model', url, '--sha256', 'ab'.repeat(32)]);
    const failure = await wrong.waitForLog((l) => l.code === 'EI_HASH_MISMATCH');
    t.regex(JSON.stringify(failure), /hashes to sha256 [0-9a-f]{64}, not the abab/);
    t.false(JSON.stringify(wrong.lines).includes('secret'), 'the URI query (a SAS token) is never logged');
    t.is((await fetch(`${wrong.url}/v2/models/cls/ready`)).status, 503);
    t.is((await fetch(`${wrong.url}/`)).status, 200, 'a model that fails to load does not take the service down');
    await wrong.stop();
  } finally {
    server.close();
  }
});

test('bad settings stop start-up with a message that names the setting', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--port', 'eighty'], /--port must be a whole number/],
    [['--max-body', 'lots'], /"lots" is not a size/],
    [['--model', 'https://example.invalid/m.onnx'], /--sha256/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
    [['--keys-file', '/nonexistent/keys'], /--keys-file \/nonexistent\/keys/],
    [['--desired', 'd.json', '--model', 'm.onnx'], /exclude each other/],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await runProgram(args);
    t.is(code, 2, args.join(' '));
    t.regex(stderr, message);
  }
  const help = await runProgram(['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /--model PATH_OR_URI/);
});

test('--desired FILE is watched: a new version swaps in, activate rolls back, a broken file is reported, a restart serves offline', async (t) => {
  const bytes = await readFile(ocrClassifierPath);
  const server = createServer((_request, response) => response.end(bytes));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cls.onnx`;
  const dir = await store();
  const desired = path.join(dir, 'desired.json');
  const write = (version: string) => writeFile(desired, JSON.stringify({ models: { direction: { version, uri, sha256: createHash('sha256').update(bytes).digest('hex') } } }));
  const statusOf = async (url: string) => (await (await fetch(`${url}/status`)).json()) as { desired: { error: string | null }; models: Record<string, { status: string; version: string }> };
  const statusReaches = async (url: string, check: (s: Awaited<ReturnType<typeof statusOf>>) => boolean) => {
    let last = await statusOf(url);
    await until(async () => check((last = await statusOf(url))), 'the status to get there', { timeoutMs: 10_000, everyMs: 100, describe: () => last });
    return last;
  };
  await write('1');
  const program = await startProgram(['--store', path.join(dir, 'store'), '--desired', desired]);
  try {
    await statusReaches(program.url, (s) => s.models.direction?.status === 'active' && s.models.direction.version === '1');
    t.is((await fetch(`${program.url}/v2/models/face/ready`)).status, 404, 'a desired state that names models does not serve the bundled one');
    await write('2');
    await statusReaches(program.url, (s) => s.models.direction?.version === '2');
    // The rollback from a shell: `edge-infer activate`.
    const port = new URL(program.url).port;
    const rolledBack = await runProgram(['activate', 'direction', '1', '--port', port]);
    t.is(rolledBack.code, 0, rolledBack.stdout);
    t.regex(rolledBack.stdout, /now serves version 1/);
    t.is((await statusOf(program.url)).models.direction?.version, '1');
    const refused = await runProgram(['activate', 'direction', '9', '--port', port]);
    t.is(refused.code, 1);
    t.regex(refused.stdout, /EI_VERSION_NOT_STORED/);
    await writeFile(desired, '{ "models": ');
    const broken = await statusReaches(program.url, (s) => s.desired.error !== null);
    t.regex(broken.desired.error!, /not valid JSON/);
    t.is(broken.models.direction?.version, '1', 'the running version (the rollback) goes on');
    await write('2');
  } finally {
    t.is(await program.stop(), 0);
    server.close();
  }
  // No server any more: the same store and desired state serve at once.
  const again = await startProgram(['--store', path.join(dir, 'store'), '--desired', desired]);
  try {
    // The store serves what served last (1, the rollback) at once; the desired state then moves it to 2.
    const status = await statusReaches(again.url, (s) => s.models.direction?.status === 'active' && s.models.direction.version === '2');
    t.is(status.models.direction?.version, '2');
    t.is((await fetch(`${again.url}/v2/models/direction/ready`)).status, 200);
  } finally {
    await again.stop();
  }
});
