/**
 * Runs test/support/rtsp-server.py (GStreamer's RTSP server) with the system Python, which has the GObject
 * bindings; the `python3` first on PATH may not. `restart()` brings it back on the same port, as a camera
 * that was switched off and on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { photoPath } from './fixtures.js';

const SCRIPT = fileURLToPath(new URL('../../../test/support/rtsp-server.py', import.meta.url));
const PYTHON = '/usr/bin/python3';

export interface RtspServer {
  port: number;
  url(mount: '/face' | '/pattern'): string;
  /** Kills the server (SIGKILL: the camera just disappears). */
  kill(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

function launch(port: number, photo: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(PYTHON, [SCRIPT, String(port), photo], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the RTSP server exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^ready (\d+)$/.exec(line);
      if (match) resolve({ child, port: Number(match[1]) });
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export async function startRtspServer(photo = photoPath(1)): Promise<RtspServer> {
  let { child, port } = await launch(0, photo);
  return {
    port,
    url: (mount) => `rtsp://127.0.0.1:${port}${mount}`,
    kill: () => stop(child),
    restart: async () => {
      await stop(child);
      ({ child } = await launch(port, photo));
    },
    close: () => stop(child),
  };
}
