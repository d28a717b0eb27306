/**
 * Cameras against real servers: GStreamer's RTSP server, HTTP MJPEG and snapshot cameras on loopback, and a
 * looped video file, scored by the bundled face detector in the test's process. What the cameras send
 * upstream lands in `service.published`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import sharp from 'sharp';
import { CameraManager } from '../src/sources/cameras.js';
import type { CameraStatus } from '../src/status/store.js';
import { FACES, iou, photo, photoPath, type Box, type Detections } from './support/fixtures.js';
import { startHttpCamera, type HttpCamera } from './support/http-camera.js';
import { makePackageFolder } from './support/packages.js';
import { startRtspServer, type RtspServer } from './support/rtsp-server.js';
import { bundledFace, startService, type TestService } from './support/service.js';
import { until } from './support/until.js';

interface Envelope {
  model: string;
  version: string;
  source: { type: string; id: string };
  timestamp: string;
  latencyMs: number;
  result: Detections & { type?: string };
}

let service: TestService;
let rtsp: RtspServer;
let http: HttpCamera;
/** sample2.jpg at 960 px wide, as the HTTP cameras serve it. */
let httpJpeg: Buffer;

test.before(async () => {
  service = await startService();
  rtsp = await startRtspServer();
  httpJpeg = await sharp(await photo(2)).resize(960).jpeg().toBuffer();
  http = await startHttpCamera({ jpeg: httpJpeg, fps: 10, credentials: 'viewer:pa55 w0rd' });
});
test.after.always(async () => {
  await service?.close();
  await rtsp?.close();
  await http?.close();
});
// Each test sets the whole camera map; none may carry cameras into the next.
test.afterEach.always(() => service.cameras.apply({}, {}));

/** The results camera `id` has sent so far. */
function sentBy(id: string): Envelope[] {
  return service.published.map((m) => JSON.parse(m.body) as Envelope).filter((e) => e.source.id === id);
}

function cameraStatus(id: string): CameraStatus | undefined {
  return service.status.camera(id);
}

/** Every state the camera goes through from now on. */
function recordStates(id: string): string[] {
  const states: string[] = [];
  service.status.on('change', () => {
    const state = cameraStatus(id)?.status;
    if (state && states.at(-1) !== state) states.push(state);
  });
  return states;
}

function waitForResults(id: string, count: number, timeoutMs = 30_000): Promise<void> {
  return until(() => sentBy(id).length >= count, `${count} results from camera ${id}`, { timeoutMs, describe: () => cameraStatus(id) });
}

/** Each expected face (scaled to the frame) is found, and nothing else. */
function assertFaces(t: import('ava').ExecutionContext, found: Detections, expected: Box[], scale: number): void {
  t.is(found.detections.length, expected.length, JSON.stringify(found.detections.map((d) => d.box)));
  for (const box of expected) {
    const scaled = box.map((v) => v * scale) as Box;
    t.true(Math.max(...found.detections.map((d) => iou(d.box, scaled))) > 0.6, `no detection near ${JSON.stringify(scaled)}`);
  }
}

test.serial('an RTSP camera: each frame is scored and sent with the camera as its source, the faces where they are', async (t) => {
  service.cameras.apply({ door: { uri: rtsp.url('/face'), fps: 5 } }, {});
  await waitForResults('door', 3);
  const message = service.published.find((m) => (JSON.parse(m.body) as Envelope).source.id === 'door')!;
  t.is(message.output, 'results');
  t.deepEqual(message.properties, { model: 'face', modelVersion: bundledFace.version, source: 'camera' });
  const envelope = sentBy('door').at(-1)!;
  t.deepEqual(envelope.source, { type: 'camera', id: 'door' });
  t.is(envelope.model, 'face');
  t.true(envelope.latencyMs > 0 && envelope.latencyMs < 5000);
  // The stream is sample1.jpg at half size, through H.264.
  assertFaces(t, envelope.result, FACES[1]!, 0.5);
  const status = cameraStatus('door')!;
  t.is(status.status, 'streaming');
  t.is(status.error, null);
  t.true(Date.now() - Date.parse(status.lastFrameAt!) < 5000);

  // The model takes images, so ffmpeg fitted the frames to its input: no decoding or resizing in the module.
  const latest = service.cameras.camera('door')!.latest()!;
  if (latest.frame.kind !== 'pixels') return t.fail(`frames came as ${latest.frame.kind}`);
  const { geometry } = latest.frame;

  // The last frame as the model saw it (256×256, letterboxed), its detections drawn: each box's left edge is green.
  const response = await fetch(`${service.url}/cameras/door/snapshot`);
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'image/jpeg');
  const { data, info } = await sharp(Buffer.from(await response.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
  t.deepEqual([info.width, info.height], [256, 256]);
  for (const { box } of (latest.result as Detections).detections) {
    const x = Math.round(box[0] * geometry.scaleX + geometry.offsetX);
    const y = Math.round(((box[1] + box[3]) / 2) * geometry.scaleY + geometry.offsetY);
    // The 2-pixel line is centred on the edge: the greenest of the three pixels around it.
    const pixels = [x - 1, x, x + 1].map((px) => [...data.subarray((y * info.width + px) * 3, (y * info.width + px) * 3 + 3)]);
    const [r, g, b] = pixels.sort((p, q) => q[1]! - q[0]! - (p[1]! - p[0]!))[0]!;
    t.true(g! > 170 && r! < 110 && b! < 160, `around (${x}, ${y}): ${r},${g},${b}, not the box's green`);
  }
  const unknown = await fetch(`${service.url}/cameras/nowhere/snapshot`);
  t.is(unknown.status, 404);
  t.is(((await unknown.json()) as { error: { code: string } }).error.code, 'EI_CAMERA_NOT_FOUND');
});

test.serial('HTTP cameras: an MJPEG stream and a snapshot URL, with credentials from the URI', async (t) => {
  service.cameras.apply(
    {
      stream: { uri: http.url('/mjpeg', 'viewer:pa55%20w0rd'), fps: 4 },
      still: { uri: http.url('/snapshot.jpg', 'viewer:pa55%20w0rd'), fps: 4 },
    },
    {},
  );
  await waitForResults('stream', 3);
  await waitForResults('still', 3);
  for (const id of ['stream', 'still']) assertFaces(t, sentBy(id).at(-1)!.result, FACES[2]!, 0.5);
  // A snapshot camera is asked at the frame rate: about 4 GETs a second, not as fast as it answers.
  const before = http.snapshots;
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const asked = http.snapshots - before;
  t.true(asked >= 5 && asked <= 10, `${asked} snapshots in 2 s at 4 fps`);
});

test.serial('a camera that refuses the credentials backs off; the others and the REST API go on', async (t) => {
  service.cameras.apply(
    {
      good: { uri: http.url('/snapshot.jpg', 'viewer:pa55%20w0rd'), fps: 2 },
      wrong: { uri: http.url('/snapshot.jpg', 'viewer:not-it'), fps: 2 },
    },
    {},
  );
  await until(() => cameraStatus('wrong')?.status === 'backoff', 'the camera with the wrong password in backoff');
  t.is(cameraStatus('wrong')!.error!.code, 'EI_CAMERA_FAILED');
  t.regex(cameraStatus('wrong')!.error!.message, /HTTP 401/);
  t.false(JSON.stringify(service.status.snapshot()).includes('not-it'));
  await waitForResults('good', 2);
  const scored = await fetch(`${service.url}/score`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: new Uint8Array(await photo(3)) });
  t.is(scored.status, 200);
  t.is(((await scored.json()) as Detections).detections.length, 3);
  t.is(cameraStatus('good')!.status, 'streaming');
});

test.serial('a video file plays in a loop, as a camera', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-video-'));
  const video = path.join(dir, 'faces.avi');
  // Two seconds of sample3.jpg: at 4 fps, more than 8 results means the file started over.
  await promisify(execFile)('ffmpeg', ['-loglevel', 'error', '-loop', '1', '-i', photoPath(3), '-t', '2', '-r', '10', '-vf', 'scale=960:-2', '-c:v', 'mjpeg', video]);
  service.cameras.apply({ demo: { uri: pathToFileURL(video).href, fps: 4 } }, {});
  await waitForResults('demo', 11, 20_000);
  assertFaces(t, sentBy('demo').at(-1)!.result, FACES[3]!, 0.5);
  t.is(cameraStatus('demo')!.status, 'streaming');
});

test.serial('a camera that goes away backs off and streams again when it is back', async (t) => {
  const states = recordStates('door');
  service.cameras.apply({ door: { uri: rtsp.url('/pattern'), fps: 5, timeoutSeconds: 3 } }, {});
  await until(() => cameraStatus('door')?.status === 'streaming', 'streaming');
  await rtsp.kill();
  await until(() => cameraStatus('door')?.status === 'backoff', 'backoff after the server was killed', { describe: () => states });
  t.regex(cameraStatus('door')!.error!.code, /^EI_CAMERA_(FAILED|STALLED)$/);
  await rtsp.restart();
  const before = sentBy('door').length;
  await until(() => cameraStatus('door')?.status === 'streaming' && sentBy('door').length > before, 'streaming again', { describe: () => states });
  t.deepEqual(states.slice(0, 3), ['connecting', 'streaming', 'backoff']);
  t.is(states.at(-1), 'streaming');
  t.is(cameraStatus('door')!.error, null);
});

test.serial('a camera that stops sending but keeps the connection open is a stall', async (t) => {
  service.cameras.apply({ frozen: { uri: http.url('/mjpeg', 'viewer:pa55%20w0rd'), fps: 5, timeoutSeconds: 2 } }, {});
  await waitForResults('frozen', 2);
  http.frozen = true;
  try {
    await until(() => cameraStatus('frozen')?.status === 'backoff', 'backoff after the stall');
    t.is(cameraStatus('frozen')!.error!.code, 'EI_CAMERA_STALLED');
  } finally {
    http.frozen = false;
  }
  const before = sentBy('frozen').length;
  await until(() => sentBy('frozen').length > before + 1, 'frames again after the camera thawed');
  t.is(cameraStatus('frozen')!.status, 'streaming');
});

test.serial('a slow model scores the newest frame: frames in between are dropped, none queue up', async (t) => {
  const slow = await makePackageFolder({
    write: { 'score.mjs': 'export async function run(input) { await new Promise((r) => setTimeout(r, 400)); return { slept: 400, bytes: input.image.length }; }' },
  });
  t.true(await service.deploy({ name: 'slow', version: '1', uri: slow }));
  service.cameras.apply({ busy: { uri: rtsp.url('/pattern'), fps: 10, model: 'slow' } }, {});
  await waitForResults('busy', 8);
  const results = sentBy('busy');
  // 10 frames a second against 2.5 scored: a queue would add 300 ms of waiting per frame, 2.4 s by the 8th.
  // Newest-first, a frame waits at most for the scoring under way: latency stays under two scorings.
  for (const { latencyMs } of results) t.true(latencyMs < 1200, `a frame waited ${latencyMs} ms for its result`);
  await until(() => (cameraStatus('busy')?.dropped ?? 0) >= 10, '10 dropped frames in the status');
  const metrics = await (await fetch(`${service.url}/metrics`)).text();
  t.regex(metrics, /edge_infer_camera_frames_total\{camera="busy",outcome="dropped"\} \d+/);
});

test.serial('twin changes apply without a restart: model swap, model, disable, re-point, remove', async (t) => {
  const states = recordStates('door');
  service.cameras.apply({ door: { uri: rtsp.url('/face'), fps: 5 } }, {});
  await waitForResults('door', 1);

  // A new version of the camera's model takes the next frame, on the same connection (the same input size).
  t.true(await service.deploy({ ...bundledFace, version: 'swapped' }));
  await until(() => sentBy('door').at(-1)?.version === 'swapped', 'results from the new version');
  t.deepEqual(states, ['connecting', 'streaming'], 'the camera did not reconnect for the swap');

  // Another model, an entry script that takes encoded images: the camera reconnects once for JPEG frames.
  const echo = await makePackageFolder({ write: { 'score.mjs': 'export function run(input) { return { detections: [], type: input.contentType }; }' } });
  t.true(await service.deploy({ name: 'echo', version: '1', uri: echo }));
  service.cameras.apply({ door: { uri: rtsp.url('/face'), fps: 5, model: 'echo' } }, {});
  await until(() => sentBy('door').at(-1)?.model === 'echo', 'results from the echo model');
  t.like(sentBy('door').at(-1)!.result, { type: 'image/jpeg' });
  t.deepEqual(states, ['connecting', 'streaming', 'connecting', 'streaming']);

  service.cameras.apply({ door: { uri: rtsp.url('/face'), fps: 5, model: 'echo', enabled: false } }, {});
  t.is(cameraStatus('door')!.status, 'disabled');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const whileDisabled = sentBy('door').length;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.is(sentBy('door').length, whileDisabled, 'a disabled camera sends nothing');

  service.cameras.apply({ door: { uri: http.url('/mjpeg', 'viewer:pa55%20w0rd'), fps: 5 } }, {});
  await until(() => sentBy('door').length > whileDisabled && sentBy('door').at(-1)!.model === 'face', 'results from the new source');
  assertFaces(t, sentBy('door').at(-1)!.result, FACES[2]!, 0.5);

  service.cameras.apply({}, {});
  t.is(cameraStatus('door'), undefined);
});

test.serial('without ffmpeg a camera fails; once ffmpeg is there, the next desired state starts it', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-ffmpeg-'));
  const ffmpeg = path.join(dir, 'ffmpeg');
  const cameras = new CameraManager({ ...service.cameraContext, ffmpeg });
  const desired = { late: { uri: rtsp.url('/pattern'), fps: 5 } };
  try {
    cameras.apply(desired, {});
    await until(() => cameraStatus('late')?.status === 'failed', 'the camera failed');
    t.is(cameraStatus('late')!.error!.code, 'EI_FFMPEG_NOT_FOUND');
    t.regex(cameraStatus('late')!.error!.message, new RegExp(`${ffmpeg}.*apt-get install ffmpeg`));
    // "Installed": the same desired state, applied again, starts the camera.
    await symlink(execFileSync('sh', ['-c', 'command -v ffmpeg']).toString().trim(), ffmpeg);
    cameras.apply(desired, {});
    await waitForResults('late', 2);
    t.is(cameraStatus('late')!.status, 'streaming');
  } finally {
    cameras.apply({}, {});
  }
});

test.serial('minScore: frames where nothing reaches it send nothing, but a heartbeat; invalid cameras say why', async (t) => {
  service.cameras.apply(
    {
      strict: { uri: rtsp.url('/face'), fps: 5, minScore: 0.999 },
      lenient: { uri: rtsp.url('/face'), fps: 5 },
      typo: { uri: 'ftp://127.0.0.1/cam', fps: 5 },
      noRate: { uri: rtsp.url('/face'), fps: 0 },
    },
    { minScore: 0.9, heartbeatSeconds: 2 },
  );
  await waitForResults('lenient', 5);
  for (const { result } of sentBy('lenient')) t.true(result.detections.every((d) => d.score >= 0.9));
  // The camera whose faces never reach 0.999 sends one frame every 2 s (of 5 a second), its detections left out.
  await waitForResults('strict', 3);
  const heartbeats = sentBy('strict');
  for (const [i, { timestamp }] of heartbeats.entries()) {
    const gap = i === 0 ? Infinity : Date.parse(timestamp) - Date.parse(heartbeats[i - 1]!.timestamp);
    t.true(gap >= 1500, `heartbeats ${gap} ms apart`);
  }
  for (const { result } of heartbeats) t.deepEqual(result.detections, []);
  t.is(cameraStatus('strict')!.status, 'streaming');
  for (const id of ['typo', 'noRate']) {
    t.is(cameraStatus(id)!.status, 'failed');
    t.is(cameraStatus(id)!.error!.code, 'EI_DESIRED_INVALID');
  }
  t.regex(cameraStatus('typo')!.error!.message, /\/cameras\/typo\/uri/);
  t.regex(cameraStatus('noRate')!.error!.message, /\/cameras\/noRate\/fps/);
});
