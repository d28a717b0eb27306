/**
 * Data collection to Azure Blob Storage (issue 15, part 2), end to end: the real service scores real photos over
 * REST, keeps them in its folder and uploads them to Azurite (the Blob emulator, a real server on loopback) with
 * a container SAS URL; then an outage in the middle. The blobs are downloaded and compared byte for byte.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { ContainerClient } from '@azure/storage-blob';
import type { IndexLine } from '../src/collect/layout.js';
import { ReportedProperties } from '../src/hub/reported.js';
import { createLogger } from '../src/log.js';
import { startAzurite, type Azurite } from './support/azurite.js';
import { startCollecting, type CollectingService } from './support/collecting-service.js';
import { photo } from './support/fixtures.js';
import { until } from './support/until.js';

/** The index lines of every index blob (or file), in id order. */
function indexLines(files: Map<string, Buffer>): IndexLine[] {
  return [...files]
    .filter(([name]) => /\/index-[^/]+\.jsonl$/.test(name))
    .flatMap(([, bytes]) => bytes.toString().trim().split('\n'))
    .map((text) => JSON.parse(text) as IndexLine)
    .sort((a, b) => a.id.localeCompare(b.id));
}

function bestScore(answer: unknown): number {
  return Math.max(0, ...(answer as { detections: Array<{ score: number }> }).detections.map((d) => d.score));
}

/** The SAS token's signature: the secret part, which must appear nowhere but in the desired state. */
function signatureOf(sasUrl: string): string {
  return new URL(sasUrl).searchParams.get('sig')!;
}

async function uploadedAll(svc: CollectingService): Promise<boolean> {
  const collect = svc.collect();
  return collect !== undefined && collect.pendingFiles === 0 && collect.kept > 0 && (await svc.files()).length === 0;
}

let azurite: Azurite;
test.before(async () => {
  azurite = await startAzurite();
});
test.after.always(async () => {
  await azurite?.close();
});

async function collecting(t: { teardown(fn: () => Promise<void>): void }, container: string): Promise<{ svc: CollectingService; client: ContainerClient; sasUrl: string }> {
  const { client, sasUrl } = await azurite.container(container);
  const svc = await startCollecting();
  t.teardown(() => svc.close());
  svc.desire({ collect: { mode: 'all', upload: { sasUrl } } });
  return { svc, client, sasUrl };
}

test.serial('kept calls land in the container with their local names: the photo as sent, the answer, an index line each', async (t) => {
  const { svc, client, sasUrl } = await collecting(t, 'landing');
  const answers = [await svc.score(1), await svc.score(2)];
  await until(() => uploadedAll(svc), 'every file uploaded and deleted locally', { describe: () => svc.collect() });

  const blobs = await azurite.blobs(client);
  const lines = indexLines(blobs);
  t.is(lines.length, 2);
  const version = svc.service.registry.active('face')!.version;
  for (const [i, line] of lines.entries()) {
    // Partitioned as Azure ML's collector does, by the call's UTC hour.
    const hour = line.time.slice(0, 13).replace(/[-T]/g, '/');
    t.true(line.input.startsWith(`face/${version}/${hour}/${line.id}-input`), line.input);
    t.is(line.output, `face/${version}/${hour}/${line.id}-output.json`);
    t.true(line.input.endsWith('.jpg'));
    t.deepEqual(blobs.get(line.input), await photo(i + 1), 'the photo byte for byte');
    t.deepEqual(JSON.parse(blobs.get(line.output)!.toString()), answers[i], 'the answer the caller got');
    t.like(line, { source: 'rest', model: 'face', version, reason: 'all', inputKind: 'as-received' });
    t.is(line.confidence, bestScore(answers[i]));
    t.true(line.latencyMs > 0);
  }
  // Everything in the container is a file the index names, or an index.
  t.deepEqual([...blobs.keys()].filter((name) => !name.includes('/index-')).sort(), lines.flatMap((l) => [l.input, l.output]).sort());

  await until(() => svc.collect()!.uploadedFiles === blobs.size, 'the status to count the uploads');
  t.like(svc.collect(), { state: 'collecting', upload: 'idle', kept: 2, pendingFiles: 0, pendingBytes: 0, deletedForCap: 0, lastError: null });
  const metrics = await (await fetch(`${svc.url}/metrics`)).text();
  t.regex(metrics, /edge_infer_collect_records_total\{model="face",outcome="kept"\} 2\b/);
  t.regex(metrics, new RegExp(`edge_infer_collect_files_total\\{outcome="uploaded"\\} ${blobs.size}\\b`));
  const status = await (await fetch(`${svc.url}/status`)).text();
  t.false(status.includes(signatureOf(sasUrl)));
});

test.serial('an outage of the storage loses nothing: files wait on disk, the retries back off, and uploads resume oldest first', async (t) => {
  const { svc, client, sasUrl } = await collecting(t, 'outage');
  // The reported properties as the hub link sends them (coalesced), captured here instead of sent to IoT Hub.
  const reported: Array<Record<string, unknown>> = [];
  new ReportedProperties(svc.service.status, createLogger('silent'), 100).attach(async (patch) => void reported.push(patch), {});
  await svc.score(1);
  await until(() => uploadedAll(svc), 'the first record uploaded', { describe: () => svc.collect() });

  await azurite.stop();
  for (const n of [2, 3, 4]) await svc.score(n);
  await until(() => svc.collect()?.upload === 'backoff' && svc.collect()!.pendingFiles >= 6, 'uploads to fail and wait', { describe: () => svc.collect() });
  const during = svc.collect()!;
  t.is(during.lastError?.code, 'EI_COLLECT_UPLOAD_FAILED');
  t.false(JSON.stringify(during).includes(signatureOf(sasUrl)));
  t.false(during.lastError!.message.includes('?'), 'the container is named without its query');
  const waiting = (await svc.files()).filter((f) => /\.(jpg|json|jsonl)$/.test(f));

  // Back on the same port with the same blobs; the order each blob first appears in is the upload order.
  await azurite.start();
  const firstSeen = new Map<string, number>();
  let poll = 0;
  await until(
    async () => {
      poll++;
      for await (const blob of client.listBlobsFlat()) if (!firstSeen.has(blob.name)) firstSeen.set(blob.name, poll);
      return uploadedAll(svc);
    },
    'every waiting file uploaded after the outage',
    { everyMs: 20, describe: () => svc.collect() },
  );
  const blobs = await azurite.blobs(client);
  const lines = indexLines(blobs);
  t.is(lines.length, 4, 'four records, none lost');
  for (const [i, line] of lines.entries()) t.deepEqual(blobs.get(line.input), await photo(i + 1));
  for (const file of waiting) t.true(blobs.has(file), `${file} uploaded`);
  const inputsAfter = lines.slice(1).map((l) => firstSeen.get(l.input)!);
  t.deepEqual(inputsAfter, [...inputsAfter].sort((a, b) => a - b), 'older inputs uploaded no later than newer ones');

  const logText = svc.log.join('');
  t.true(logText.includes('EI_COLLECT_UPLOAD_FAILED'), 'the outage is logged');
  t.false(logText.includes(signatureOf(sasUrl)), 'the SAS signature is never logged');
  t.false(logText.includes(new URL(sasUrl).search), 'nor the SAS query');
  t.false((await (await fetch(`${svc.url}/status`)).text()).includes(signatureOf(sasUrl)));
  const collectReported = reported.map((patch) => (patch.runtime as { collect?: { upload: string } } | undefined)?.collect).filter(Boolean);
  t.true(collectReported.some((collect) => collect!.upload === 'backoff'), 'the outage reached the reported properties');
  t.false(JSON.stringify(reported).includes(signatureOf(sasUrl)), 'the SAS never reaches the reported properties');
});

test.serial('what a killed run left is uploaded first: its open index closed, its half-written file dropped', async (t) => {
  const { client, sasUrl } = await azurite.container('leftovers');
  const storeDir = await mkdtemp(path.join(tmpdir(), 'edge-infer-collect-left-'));
  const partition = 'face/1/2026/11/25/23';
  const dir = path.join(storeDir, 'collected', ...partition.split('/'));
  await mkdir(dir, { recursive: true });
  const line = { id: '20261125T235959000Z-000001', input: `${partition}/20261125T235959000Z-000001-input.jpg` };
  await writeFile(path.join(dir, '20261125T235959000Z-000001-input.jpg'), await photo(5));
  await writeFile(path.join(dir, 'index-20261125T235958000Z-000000.jsonl.open'), `${JSON.stringify(line)}\n`);
  await writeFile(path.join(dir, '20261125T235959000Z-000002-input.jpg.writing'), 'half');

  const svc = await startCollecting(storeDir);
  t.teardown(() => svc.close());
  t.like(svc.collect(), { state: 'off', pendingFiles: 2 }, 'shown, waiting for a collect section');
  svc.desire({ collect: { mode: 'sample', sampleRate: 0, upload: { sasUrl } } });
  await until(async () => svc.collect()?.uploadedFiles === 2 && (await svc.files()).length === 0, 'the leftovers uploaded', { describe: () => svc.collect() });
  const blobs = await azurite.blobs(client);
  t.deepEqual([...blobs.keys()].sort(), [line.input, `${partition}/index-20261125T235958000Z-000000.jsonl`]);
  t.deepEqual(blobs.get(line.input), await photo(5));
  t.deepEqual(JSON.parse(blobs.get(`${partition}/index-20261125T235958000Z-000000.jsonl`)!.toString()), line);
});
