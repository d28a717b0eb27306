/** The pieces that need no server: settings, preprocessing arithmetic, the registry's drain, the error table. */
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { parseKeys, parseSettings, parseSize, slotNameOf } from '../src/config/settings.js';
import { ERRORS, EdgeInferError } from '../src/errors.js';
import { createKeyCheck } from '../src/server/auth.js';
import { planImageInput, pixelsToTensor } from '../src/pipeline/image.js';
import { ModelRegistry } from '../src/models/registry.js';
import type { ModelVersion } from '../src/engine/loaded-version.js';

test('sizes, keys and slot names parse as the README says', (t) => {
  t.is(parseSize('16MiB'), 16 * 1024 * 1024);
  t.is(parseSize('1048576'), 1048576);
  t.is(parseSize('2 MB'), 2_000_000);
  t.throws(() => parseSize('-1'), { instanceOf: EdgeInferError });
  t.deepEqual(parseKeys('# rotated 2026-11\nold-key\n\nnew-key, third'), ['old-key', 'new-key', 'third']);
  t.is(slotNameOf('https://acct.blob.core.windows.net/models/face-3.tar.gz?sv=1&sig=2'), 'face-3');
  t.is(slotNameOf('/models/yolo.onnx'), 'yolo');
});

test('settings: flags win over the environment, which wins over defaults', (t) => {
  const settings = parseSettings(['--port', '6000'], { PORT: '7000', EDGE_INFER_KEYS: 'a,b', EDGE_INFER_CORS: 'https://x.example, *', LOG_LEVEL: 'warn' });
  t.not(settings, 'help');
  if (settings === 'help') return;
  t.is(settings.port, 6000);
  t.deepEqual(settings.keys, ['a', 'b']);
  t.deepEqual(settings.corsOrigins, ['https://x.example', '*']);
  t.is(settings.logLevel, 'warn');
  t.is(settings.maxBody, 16 * 1024 * 1024);
  t.is(settings.store, './.edge-infer');
  t.is(settings.model, undefined);
  t.is(settings.ffmpeg, 'ffmpeg');
  const withFfmpeg = parseSettings(['--ffmpeg', '/opt/bin/ffmpeg'], { EDGE_INFER_FFMPEG: '/usr/local/bin/ffmpeg' });
  t.is(withFfmpeg !== 'help' && withFfmpeg.ffmpeg, '/opt/bin/ffmpeg');
  const withModel = parseSettings(['--model', './models/cls.onnx'], {});
  t.deepEqual(withModel !== 'help' && withModel.model, { uri: './models/cls.onnx', name: 'cls', sha256: undefined });
});

test('settings: --spin-wait is off unless turned on, and takes only on or off', (t) => {
  const spinWait = (args: string[], env: NodeJS.ProcessEnv) => {
    const settings = parseSettings(args, env);
    return settings !== 'help' && settings.spinWait;
  };
  t.false(spinWait([], {}));
  t.true(spinWait([], { EDGE_INFER_SPIN_WAIT: 'on' }));
  t.false(spinWait(['--spin-wait', 'off'], { EDGE_INFER_SPIN_WAIT: 'on' }));
  const error = t.throws(() => parseSettings(['--spin-wait', 'yes'], {}));
  t.like(error, { code: 'EI_CONFIG_INVALID' });
  t.regex(error!.message, /--spin-wait must be on or off, not "yes"/);
});

test('key check: either key matches, a prefix or a longer string does not', (t) => {
  const check = createKeyCheck(['alpha-key', 'beta-key']);
  t.true(check('alpha-key'));
  t.true(check('beta-key'));
  t.false(check('alpha'));
  t.false(check('alpha-key-and-more'));
  t.false(check(''));
});

test('pixels become NHWC RGB or NCHW BGR tensors with (pixel − mean) / std', (t) => {
  // Two pixels, 2×1: (10, 20, 30) and (40, 50, 60).
  const pixels = Uint8Array.from([10, 20, 30, 40, 50, 60]);
  const spec = { name: 'x', type: 'float32', shape: [1, 1, 2, 3] };
  const nhwc = pixelsToTensor(pixels, planImageInput('m', spec, { mean: [10, 20, 30], std: 2 }));
  t.deepEqual(nhwc.dims, [1, 1, 2, 3]);
  t.deepEqual(Array.from(nhwc.data as Float32Array), [0, 0, 0, 15, 15, 15]);
  const nchwSpec = { name: 'x', type: 'float32', shape: [1, 3, 1, 2] };
  const nchw = pixelsToTensor(pixels, planImageInput('m', nchwSpec, { channels: 'BGR' }));
  t.deepEqual(nchw.dims, [1, 3, 1, 2]);
  // Default scale for float inputs: pixel / 255; BGR puts blue's plane first.
  t.deepEqual(Array.from(nchw.data as Float32Array, (v) => Math.round(v * 255)), [30, 60, 20, 50, 10, 40]);
  const bytes = pixelsToTensor(pixels, planImageInput('m', { name: 'x', type: 'uint8', shape: [1, 1, 2, 3] }, { mean: 100 }));
  t.deepEqual(Array.from(bytes.data as Uint8Array), [10, 20, 30, 40, 50, 60], 'uint8 models take the pixels as they are');
});

test('an input that cannot take an image is refused with what to set', (t) => {
  const plan = (shape: Array<number | string>, settings = {}) => planImageInput('m', { name: 'x', type: 'float32', shape }, settings);
  t.throws(() => plan([1, 10]), { code: 'EI_INPUT_NOT_IMAGE', message: /4/ } as never);
  t.throws(() => plan(['n', 3, 'h', 'w']), { message: /set image.width and image.height/ });
  t.throws(() => plan([1, 5, 5, 5]), { message: /set image.layout/ });
  t.throws(() => plan([1, 3, 8, 8], { mean: '1,2' }), { message: /2 values given for 3 channels/ });
  t.is(plan(['n', 3, 'h', 'w'], { width: 64, height: 32 }).layout, 'NCHW');
});

function fakeVersion(version: string, released: string[]): ModelVersion {
  return {
    name: 'm',
    version,
    sha256: undefined,
    target: 'cpu',
    signature: { inputs: [], outputs: [] },
    settings: {},
    imagePlan: undefined,
    score: async () => version,
    infer: async () => ({}),
    release: async () => void released.push(version),
  };
}

test('registry: a swap drains; the old version is released when its last lease returns', (t) => {
  const released: string[] = [];
  const registry = new ModelRegistry(() => t.fail());
  t.throws(() => registry.acquire('m'), { code: 'EI_MODEL_NOT_FOUND' } as never);
  // No default model set: not found, naming the slots (every source asks the registry the same way).
  t.throws(() => registry.acquire(undefined), { code: 'EI_MODEL_NOT_FOUND', message: /"\(default\)".*\(none\)/ } as never);
  registry.expect('m');
  t.throws(() => registry.acquire('m'), { code: 'EI_MODEL_NOT_READY' } as never);
  registry.activate(fakeVersion('1', released));
  const first = registry.acquire('m');
  const second = registry.acquire('m');
  registry.activate(fakeVersion('2', released));
  t.is(registry.acquire('m').model.version, '2', 'new requests go to the new version at once');
  first.release();
  first.release();
  t.deepEqual(released, [], 'still leased: not released');
  second.release();
  t.deepEqual(released, ['1']);
  t.throws(() => registry.acquire('m', '1'), { code: 'EI_VERSION_NOT_FOUND' } as never);
  registry.close();
});

test('every error code is unique, has a message, and is documented in the README', async (t) => {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const codes = Object.keys(ERRORS);
  t.is(new Set(codes).size, codes.length);
  for (const code of codes) {
    t.true(readme.includes(`\`${code}\``), `${code} is missing from the README's error table`);
    const error = new EdgeInferError(code as keyof typeof ERRORS, ['a', 'b', 'c']);
    t.false(error.message.includes('%s'), `${code} takes more arguments than its message has`);
  }
});
