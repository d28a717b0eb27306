import { readdir } from 'node:fs/promises';
import { symlink } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import sharp from 'sharp';
import { hashFile } from '../src/models/hash-file.js';
import { ocrClassifierPath, postImage, postJson } from './support/fixtures.js';
import { makePackageFolder, tarGz, zip } from './support/packages.js';
import { startService, type TestService } from './support/service.js';

/** PaddleOCR's direction classifier, as its authors preprocess: 48×192, BGR, scaled to −1..1. */
const CLASSIFIER_SETTINGS = {
  image: { width: 192, height: 48, layout: 'NCHW', channels: 'BGR', resize: 'contain', mean: 127.5, std: '127.5,127.5,127.5' },
  postprocess: { kind: 'classification', labels: 'labels.txt', topK: 2 },
};

async function textImage(upsideDown: boolean): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="480" height="120"><rect width="480" height="120" fill="white"/>
    <text x="16" y="84" font-size="64" font-family="DejaVu Sans, sans-serif">Edge 2026</text></svg>`;
  return sharp(Buffer.from(svg)).rotate(upsideDown ? 180 : 0).png().toBuffer();
}

interface Predictions {
  predictions: Array<{ index: number; label?: string; score: number }>;
}

let service: TestService;
test.before(async () => {
  service = await startService();
});
test.after.always(() => service?.close());

test('a folder package with a manifest and labels classifies text as upright or upside down', async (t) => {
  const folder = await makePackageFolder({
    copy: { 'cls.onnx': ocrClassifierPath },
    write: { 'labels.txt': '0°\n180°\n', 'edge-infer.json': { model: 'cls.onnx', ...CLASSIFIER_SETTINGS } },
  });
  t.true(await service.deploy({ name: 'direction', version: '1', uri: folder }));
  const upright = (await (await postImage(`${service.url}/models/direction/score`, await textImage(false), 'image/png')).json()) as Predictions;
  const flipped = (await (await postImage(`${service.url}/models/direction/score`, await textImage(true), 'image/png')).json()) as Predictions;
  t.is(upright.predictions[0]?.label, '0°');
  t.is(flipped.predictions[0]?.label, '180°');
  for (const result of [upright, flipped]) {
    t.is(result.predictions.length, 2);
    t.true(Math.abs(result.predictions[0]!.score + result.predictions[1]!.score - 1) < 1e-4, 'the model ends in a softmax');
  }
});

test('the same package as .tar.gz and as .zip, and a bare .onnx with inline settings, answer alike', async (t) => {
  const folder = await makePackageFolder({
    copy: { 'model/cls.onnx': ocrClassifierPath },
    write: { 'model/labels.txt': '0°\n180°\n', 'model/edge-infer.json': CLASSIFIER_SETTINGS },
  });
  const image = await textImage(true);
  const archives = [await tarGz(folder), await zip(folder, ['model/cls.onnx', 'model/labels.txt', 'model/edge-infer.json'])];
  for (const [i, uri] of archives.entries()) {
    t.true(await service.deploy({ name: `packed${i}`, version: '1', uri }), `${uri}: ${JSON.stringify(service.status.model(`packed${i}`)?.error)}`);
    const result = (await (await postImage(`${service.url}/models/packed${i}/score`, image, 'image/png')).json()) as Predictions;
    t.is(result.predictions[0]?.label, '180°', uri);
  }
  // Unpacked into the store, by the archive's content hash (other tests of this file unpack beside them).
  const unpacked = await readdir(path.join(service.storeDir, 'packages'));
  for (const archive of archives) t.true(unpacked.includes((await hashFile(archive)).digest('hex')), archive);

  const inline = { ...CLASSIFIER_SETTINGS, postprocess: { kind: 'classification' as const, labels: ['upright', 'upside down'], topK: 1 } };
  t.true(await service.deploy({ name: 'bare', version: '1', uri: ocrClassifierPath, settings: inline as never }));
  const bare = (await (await postImage(`${service.url}/models/bare/score`, image, 'image/png')).json()) as Predictions;
  t.deepEqual(bare.predictions.map((p) => p.label), ['upside down']);
});

test('an entry script: init runs once per loaded version, run shapes every result', async (t) => {
  const script = `
    let inits = 0;
    let labels;
    export async function init(ctx) {
      inits += 1;
      const { readFile } = await import('node:fs/promises');
      labels = (await readFile(ctx.dir + '/labels.txt', 'utf8')).trim().split('\\n');
      ctx.log.info('entry script ready');
    }
    export async function run(input, ctx) {
      if (!input.image) return { echo: input, inits };
      const outputs = await ctx.model.run(await ctx.imageToTensor(input.image));
      const [up, down] = Object.values(outputs)[0].data;
      return { direction: up > down ? labels[0] : labels[1], inits, contentType: input.contentType };
    }`;
  const folder = await makePackageFolder({
    copy: { 'cls.onnx': ocrClassifierPath },
    write: { 'score.mjs': script, 'labels.txt': 'upright\nupside-down\n', 'edge-infer.json': { image: CLASSIFIER_SETTINGS.image, inputSample: { ping: 1 } } },
  });
  t.true(await service.deploy({ name: 'scripted', version: '1', uri: folder }));
  for (const upsideDown of [false, true, false]) {
    const response = await postImage(`${service.url}/models/scripted/score`, await textImage(upsideDown), 'image/png');
    t.deepEqual(await response.json(), { direction: upsideDown ? 'upside-down' : 'upright', inits: 1, contentType: 'image/png' });
  }
  t.deepEqual(await (await postJson(`${service.url}/models/scripted/score`, { ping: 2 })).json(), { echo: { ping: 2 }, inits: 1 });
  // A new version of the same package is a new module instance with its own init.
  t.true(await service.deploy({ name: 'scripted', version: '2', uri: folder }));
  t.deepEqual(await (await postJson(`${service.url}/models/scripted/score`, { ping: 3 })).json(), { echo: { ping: 3 }, inits: 1 });
});

test('an entry script that throws answers 500 EI_SCRIPT_FAILED and the service goes on', async (t) => {
  const folder = await makePackageFolder({ write: { 'score.mjs': 'export function run(input) { if (input.boom) throw new Error("boom"); return { ok: true }; }' } });
  t.true(await service.deploy({ name: 'fragile', version: '1', uri: folder }));
  const failed = await postJson(`${service.url}/models/fragile/score`, { boom: true });
  t.is(failed.status, 500);
  const body = (await failed.json()) as { error: { code: string; message: string } };
  t.is(body.error.code, 'EI_SCRIPT_FAILED');
  t.regex(body.error.message, /boom/);
  t.deepEqual(await (await postJson(`${service.url}/models/fragile/score`, {})).json(), { ok: true });
});

test('packages that cannot be used fail with a code that says why, and the served version stays', async (t) => {
  const good = await makePackageFolder({ copy: { 'cls.onnx': ocrClassifierPath }, write: { 'edge-infer.json': { image: CLASSIFIER_SETTINGS.image } } });
  t.true(await service.deploy({ name: 'steady', version: '1', uri: good }));

  const outside = await makePackageFolder({ write: { 'inner/x.txt': 'x', 'outside.txt': 'escape' } });
  const cases: Array<[string, string, RegExp]> = [
    [await makePackageFolder({ write: { 'edge-infer.json': '{ not json' } }), 'EI_PACKAGE_INVALID', /not valid JSON/],
    [await makePackageFolder({ write: { 'edge-infer.json': { image: { layout: 'HWC' } } } }), 'EI_PACKAGE_INVALID', /\/image\/layout/],
    [await makePackageFolder({ copy: { 'a.onnx': ocrClassifierPath, 'b.onnx': ocrClassifierPath } }), 'EI_PACKAGE_INVALID', /name the model/],
    [await makePackageFolder({ write: { 'model.onnx': 'this is not a model' } }), 'EI_MODEL_LOAD_FAILED', /model\.onnx/],
    [await makePackageFolder({ copy: { 'cls.onnx': ocrClassifierPath }, write: { 'edge-infer.json': { postprocess: { kind: 'blazeface' } } } }), 'EI_PACKAGE_INVALID', /blazeface/],
    [await zip(outside, ['inner/x.txt', 'outside.txt'], { from: 'inner/x.txt', to: '../../x.txt' }), 'EI_UNPACK_FAILED', /\.\.\/\.\.\/x\.txt/],
  ];
  await symlink('/etc/passwd', path.join(outside, 'inner', 'link'));
  cases.push([await tarGz(outside, ['inner']), 'EI_UNPACK_FAILED', /SymbolicLink/]);

  for (const [uri, code, message] of cases) {
    t.false(await service.deploy({ name: 'steady', version: 'bad', uri }), uri);
    const status = service.status.model('steady')!;
    t.is(status.status, 'failed');
    t.is(status.error?.code, code, uri);
    t.regex(status.error?.message ?? '', message, uri);
    t.is(status.version, '1', 'the previous version is still the one answering');
    const response = await postImage(`${service.url}/models/steady/score`, await textImage(false), 'image/png');
    t.is(response.status, 200);
  }
});

test('an archive that expands past the size limit is refused, zip and tar alike', async (t) => {
  const { unpackArchive } = await import('../src/models/unpack.js');
  const folder = await makePackageFolder({ write: { 'big.txt': 'x'.repeat(64 * 1024) } });
  for (const archive of [await tarGz(folder, ['big.txt']), await zip(folder, ['big.txt'])]) {
    const error = await t.throwsAsync(unpackArchive(archive, `${archive}.out`, 4096));
    t.is((error as { code?: string }).code, 'EI_UNPACK_TOO_LARGE');
    t.regex(error!.message, /expands to more than 4096 bytes/);
    await t.throwsAsync(readdir(`${archive}.out`), undefined, 'nothing is left behind');
  }
});

test('a file:// URI serves a package in place, as on an air-gapped device', async (t) => {
  const folder = await makePackageFolder({ copy: { 'cls.onnx': ocrClassifierPath }, write: { 'edge-infer.json': { image: CLASSIFIER_SETTINGS.image } } });
  t.true(await service.deploy({ name: 'airgapped', version: '1', uri: pathToFileURL(folder).href }));
  t.is((await postImage(`${service.url}/models/airgapped/score`, await textImage(false), 'image/png')).status, 200);
});
