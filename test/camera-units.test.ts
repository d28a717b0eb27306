/** The camera pieces that need no camera: framing, ffmpeg's fitting against sharp's, URI secrets, minScore. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import sharp from 'sharp';
import type { Frame, FrameSize } from '../src/pipeline/frame.js';
import { resizeGeometry } from '../src/pipeline/image.js';
import { checkCamera, readDesiredState } from '../src/config/desired-state.js';
import { redactText, redactUri } from '../src/redact.js';
import { cameraAddress } from '../src/sources/camera-address.js';
import { ffmpegArgs } from '../src/sources/ffmpeg-args.js';
import { ffmpegFrames } from '../src/sources/ffmpeg-frames.js';
import { FixedSizeSplitter, JpegSplitter } from '../src/sources/frame-splitters.js';
import { photo } from './support/fixtures.js';
import { applyMinScore } from '../src/sources/min-score.js';

test('the splitter finds every JPEG however the stream is cut, and skips multipart headers between them', async (t) => {
  const jpegs = await Promise.all(
    ['#d33', '#3d3', '#33d'].map((fill) => sharp({ create: { width: 32, height: 24, channels: 3, background: fill } }).jpeg().toBuffer()),
  );
  const stream = Buffer.concat(jpegs.flatMap((jpeg) => [Buffer.from('--frame\r\nContent-Type: image/jpeg\r\n\r\n'), jpeg, Buffer.from('\r\n')]));
  for (const size of [1, 2, 3, 7, 100, stream.length]) {
    const splitter = new JpegSplitter();
    const found: Buffer[] = [];
    for (let at = 0; at < stream.length; at += size) found.push(...splitter.push(stream.subarray(at, at + size)));
    t.deepEqual(found.map((b) => b.toString('hex')), jpegs.map((b) => b.toString('hex')), `chunks of ${size} bytes`);
  }
});

test('raw frames are cut at their size, however the stream is cut', (t) => {
  const frames = Buffer.from(Array.from({ length: 3 * 12 }, (_, i) => i));
  for (const size of [1, 5, 12, 13, frames.length]) {
    const splitter = new FixedSizeSplitter(12);
    const found: Buffer[] = [];
    for (let at = 0; at < frames.length; at += size) found.push(...splitter.push(frames.subarray(at, at + size)));
    t.deepEqual(found.map((b) => [...b]), [0, 1, 2].map((n) => [...frames.subarray(n * 12, n * 12 + 12)]), `chunks of ${size} bytes`);
  }
});

/** The first frame ffmpeg makes of `file` at `size`. */
function firstFrame(file: string, size: FrameSize): Promise<Frame> {
  return new Promise((resolve, reject) => {
    const source = ffmpegFrames(cameraAddress(pathToFileURL(file).href), { ffmpeg: 'ffmpeg', fps: 5, timeoutMs: 10_000, size }, {
      frame: (frame) => {
        source.close();
        resolve(frame);
      },
      fault: reject,
    });
  });
}

for (const resize of ['fill', 'contain', 'cover'] as const) {
  test(`ffmpeg fits a frame into the model's input as sharp does: ${resize}`, async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-fit-'));
    const file = path.join(dir, 'frame.png');
    await writeFile(file, await sharp(await photo(1)).resize(960, 640).png().toBuffer());
    const size = { width: 256, height: 256, resize };
    const frame = await firstFrame(file, size);
    if (frame.kind !== 'pixels') return t.fail('not pixels');
    t.deepEqual(frame.geometry, resizeGeometry(960, 640, size), 'the geometry is read from the input ffmpeg describes');
    const expected = await sharp(file).resize(256, 256, { fit: resize, background: { r: 0, g: 0, b: 0 } }).raw().toBuffer();
    // Scaling filters differ by about 0.4 on average here; the picture placed a pixel off differs by 4.
    let difference = 0;
    for (let i = 0; i < expected.length; i++) difference += Math.abs(expected[i]! - frame.pixels[i]!);
    const mean = difference / expected.length;
    t.true(mean < 1.5, `ffmpeg's pixels differ from sharp's by ${mean.toFixed(2)} on average`);
  });
}

test('camera URIs: RTSP, HTTP, V4L2 devices and video files, each read the way it needs', (t) => {
  const rate = { fps: 5, timeoutMs: 10_000 };
  const rtsp = ffmpegArgs(cameraAddress('rtsp://cam.local/stream1'), rate);
  t.true(rtsp.join(' ').includes('-rtsp_transport tcp'));
  t.true(rtsp.includes('fps=5'));
  const pixels = ffmpegArgs(cameraAddress('rtsp://cam.local/stream1'), { ...rate, size: { width: 256, height: 192, resize: 'fill' } });
  t.true(pixels.join(' ').includes('-vf fps=5,scale=256:192,format=rgb24 -f rawvideo -pix_fmt rgb24 pipe:1'));
  t.is(rtsp.at(-1), 'pipe:1');
  // A V4L2 device is the one source nothing here can open; its command line is what can be checked.
  const v4l2 = cameraAddress('file:///dev/video0');
  t.is(v4l2.kind, 'v4l2');
  t.true(ffmpegArgs(v4l2, rate).join(' ').includes('-f v4l2 -i /dev/video0'));
  const file = cameraAddress('file:///data/demo%20clip.mp4');
  t.like(file, { kind: 'file', path: '/data/demo clip.mp4' });
  t.true(ffmpegArgs(file, rate).join(' ').includes('-re -stream_loop -1 -i /data/demo clip.mp4'));
  t.is(cameraAddress('rtsps://cam.local/s').kind, 'rtsp');
  t.is(cameraAddress('HTTPS://cam.local/snap.jpg').kind, 'http');
});

test('secrets in a URI are left out of what is shown, as written and percent-decoded', (t) => {
  const uri = 'rtsp://admin:p%40ss@10.0.0.5:554/live?token=abc123';
  t.is(redactUri(uri), 'rtsp://10.0.0.5:554/live');
  t.is(cameraAddress(uri).shown, 'rtsp://10.0.0.5:554/live');
  const ffmpegSaid = 'rtsp://admin:p%40ss@10.0.0.5:554/live?token=abc123: 401 Unauthorized (password p@ss)';
  const shown = redactText(ffmpegSaid, uri);
  for (const secret of ['p%40ss', 'p@ss', 'abc123']) t.false(shown.includes(secret), shown);
  t.is(shown, 'rtsp://***@10.0.0.5:554/live?***: 401 Unauthorized (password ***)');
  t.is(redactText('no secrets here', 'rtsp://10.0.0.5/live'), 'no secrets here');
});

test('minScore leaves out weak detections and says whether anything reached it', (t) => {
  const result = { detections: [{ score: 0.95 }, { score: 0.4 }] };
  t.deepEqual(applyMinScore(result, 0.5), { result: { detections: [{ score: 0.95 }] }, found: true });
  t.deepEqual(applyMinScore(result, 0.99), { result: { detections: [] }, found: false });
  const classes = { predictions: [{ index: 1, score: 0.6 }, { index: 0, score: 0.4 }] };
  t.deepEqual(applyMinScore(classes, 0.5), { result: classes, found: true });
  t.false(applyMinScore(classes, 0.7).found);
  t.true(applyMinScore({ outputs: {} }, 0.9).found, 'a result without scores is always sent');
});

test('the desired state: cameras keyed by id, null deletes, and an output that does not fit is refused with its path', (t) => {
  const state = readDesiredState({ cameras: { door: { uri: 'rtsp://cam/1' }, gone: null }, output: { minScore: 0.5 } });
  t.deepEqual(state, { models: {}, cameras: { door: { uri: 'rtsp://cam/1' } }, output: { minScore: 0.5 } });
  t.regex(readDesiredState({ output: { minscore: 0.5 } }) as string, /^\/output/);
  t.regex(readDesiredState({ cameras: [] }) as string, /^\/cameras: must be an object/);
  t.regex(checkCamera('door', { uri: 'rtsp://cam/1', fps: 120 }) as string, /^\/cameras\/door\/fps/);
  t.regex(checkCamera('front door', { uri: 'rtsp://cam/1' }) as string, /a camera id is/);
});
