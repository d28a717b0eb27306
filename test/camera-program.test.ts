/**
 * Cameras in the real program, configured by a desired file as a standalone user would: what its logs, its
 * status and its metrics show of credentialed URIs, and what happens without ffmpeg.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { photo, postImage } from './support/fixtures.js';
import { startHttpCamera } from './support/http-camera.js';
import { startProgram } from './support/program.js';
import { until } from './support/until.js';

interface Status {
  cameras: Record<string, { status: string; error: { code: string; message: string } | null }>;
  models?: Record<string, { status: string }>;
}

async function desiredFile(cameras: Record<string, unknown>): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-cameras-'));
  const file = path.join(dir, 'desired.json');
  await writeFile(file, JSON.stringify({ cameras }));
  return { dir, file };
}

test('a password in a camera URI never shows: not in the log, the status or the metrics', async (t) => {
  const camera = await startHttpCamera({ jpeg: await sharp(await photo(4)).resize(640).jpeg().toBuffer(), credentials: 'ops:Tr0ub4dor-3', fps: 5 });
  const { dir, file } = await desiredFile({
    lobby: { uri: camera.url('/mjpeg', 'ops:Tr0ub4dor-3'), fps: 2 },
    // Nothing listens on port 1: ffmpeg's error message quotes the URI it could not open.
    yard: { uri: 'rtsp://admin:hunter2-secret@127.0.0.1:1/live?token=t0ken-secret', fps: 2 },
  });
  const program = await startProgram(['--store', path.join(dir, 'store'), '--desired', file, '--log-level', 'debug']);
  try {
    let status: Status = { cameras: {} };
    const read = async () => (status = (await (await fetch(`${program.url}/status`)).json()) as Status);
    await until(async () => (await read()).cameras.lobby?.status === 'streaming', 'the lobby camera streaming', { describe: () => status });
    await until(() => program.lines.filter((l) => l.msg === 'camera fault' && l.camera === 'yard').length >= 2, 'two faults of the yard camera');
    // Between two tries the camera is in backoff; a read that lands on the next try sees it connecting.
    await until(async () => (await read()).cameras.yard?.status === 'backoff', 'the yard camera in backoff', { describe: () => status });
    t.regex(status.cameras.yard!.error!.message, /rtsp:\/\/127\.0\.0\.1:1\/live/);
    const metrics = await (await fetch(`${program.url}/metrics`)).text();
    const everything = [JSON.stringify(program.lines), JSON.stringify(status), metrics].join('\n');
    for (const secret of ['Tr0ub4dor-3', 'hunter2-secret', 't0ken-secret']) t.false(everything.includes(secret), `"${secret}" appears`);
  } finally {
    await program.stop();
    await camera.close();
  }
});

test('without ffmpeg a camera fails with what to install; snapshot cameras and the REST API still work', async (t) => {
  const camera = await startHttpCamera({ jpeg: await sharp(await photo(5)).resize(640).jpeg().toBuffer() });
  const { dir, file } = await desiredFile({
    gate: { uri: 'rtsp://127.0.0.1:1/live', fps: 1 },
    still: { uri: camera.url('/snapshot.jpg'), fps: 1 },
  });
  const program = await startProgram(['--store', path.join(dir, 'store'), '--desired', file], { EDGE_INFER_FFMPEG: '/nonexistent/ffmpeg' });
  try {
    let status: Status = { cameras: {} };
    await until(
      async () => {
        status = (await (await fetch(`${program.url}/status`)).json()) as Status;
        // A camera streams from its first frame, which may come before the model is active (then /score is a 503).
        return status.cameras.gate?.status === 'failed' && status.cameras.still?.status === 'streaming' && status.models?.face?.status === 'active';
      },
      'the RTSP camera failed, the snapshot camera streaming and the model active',
      { describe: () => status },
    );
    t.is(status.cameras.gate!.error!.code, 'EI_FFMPEG_NOT_FOUND');
    t.regex(status.cameras.gate!.error!.message, /apt-get install ffmpeg/);
    const response = await postImage(`${program.url}/score`, await photo(5));
    t.is(((await response.json()) as { detections: unknown[] }).detections.length, 5);
  } finally {
    await program.stop();
    await camera.close();
  }
});
