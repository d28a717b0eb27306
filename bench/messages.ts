/**
 * edgeHub input messages to `results` with the bundled model, through the test edgeHub (the real SDK over
 * MQTT+TLS): messages/s and end-to-end latency at 1 and 16 in flight, against the same images over `/score`.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile } from './measure.js';
import { startModuleWithHub } from './module-with-hub.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

interface Figures {
  rate: number;
  p50: number;
  p99: number;
}

/** Keeps `inFlight` operations going for the bench's seconds; each resolves when its answer is back. */
async function closedLoop(inFlight: number, operation: () => Promise<void>): Promise<Figures> {
  const times: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        await operation();
        times.push(performance.now() - t0);
      }
    }),
  );
  times.sort((a, b) => a - b);
  return { rate: times.length / ((performance.now() - start) / 1000), p50: percentile(times, 50), p99: percentile(times, 99) };
}

export async function messagesBench(): Promise<string[]> {
  const { hub, base, stop } = await startModuleWithHub({});
  const image = await readFile(path.join(root, 'node_modules/@vladmandic/face-api/demo/sample1.jpg'));
  const waiting = new Map<string, () => void>();
  hub.onOutput((message) => waiting.get(message.properties['$.cid'] ?? '')?.());
  const viaHub = async () => {
    // The answer can come back before sendInput resolves: listen from before the send.
    let answered!: () => void;
    const answer = new Promise<void>((resolve) => (answered = resolve));
    const id = randomUUID();
    waiting.set(id, answered);
    await hub.sendInput('score', image, { '$.ct': 'image/jpeg' }, id);
    await answer;
    waiting.delete(id);
  };
  const viaHttp = async () => {
    const response = await fetch(`${base}/score`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: new Uint8Array(image) });
    if (response.status !== 200) throw new Error(`/score answered ${response.status}`);
    await response.arrayBuffer();
  };
  try {
    // Warm before the figures.
    await closedLoop(1, viaHub);
    const rows: string[] = [];
    for (const inFlight of [1, 16]) {
      const messages = await closedLoop(inFlight, viaHub);
      const http = await closedLoop(inFlight, viaHttp);
      rows.push(
        `| ${inFlight} in flight | ${messages.rate.toFixed(1)} | ${messages.p50.toFixed(1)} | ${messages.p99.toFixed(1)} | ${http.rate.toFixed(1)} | ${http.p50.toFixed(1)} | ${http.p99.toFixed(1)} |`,
      );
    }
    return [
      '## edgeHub messages (JPEG 1920x1280, bundled model)',
      '',
      '| load | messages/s | p50 ms | p99 ms | /score req/s | /score p50 ms | /score p99 ms |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows,
      '',
    ];
  } finally {
    await stop();
  }
}
