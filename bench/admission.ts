/**
 * Admission under overload (issue 12): the service as `npm start` runs it, with its default admission limits,
 * with as many waiting as in flight, and with the wait budget (`--max-queue-wait auto`), offered twice the rate it can sustain on /score images. Accepted requests/s,
 * share shed, p99 of the accepted against the unloaded p99 (goal ≤ 2x) and resident memory at the end against the
 * unloaded figure (goal ≤ 1.2x).
 */
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultAdmissionLimits } from '../src/models/admission.js';
import { freePort, startModule, stopChild } from './children.js';
import { percentile, sequentialLatency } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

async function residentMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

interface Limits {
  inFlight: number;
  waiting: number;
  maxQueueWait?: number | 'auto';
}

/** One service started with `limits`: unloaded, then its sustainable rate, then twice that; one table row. */
async function overloadRow(image: Buffer, limits: Limits, label: string): Promise<string> {
  const port = await freePort();
  const { child } = await startModule(
    [
      ...['--port', String(port), '--host', '127.0.0.1', '--store', path.join(tmpdir(), 'edge-infer-bench-admission')],
      ...['--max-in-flight', String(limits.inFlight), '--max-waiting', String(limits.waiting)],
      ...(limits.maxQueueWait !== undefined ? ['--max-queue-wait', String(limits.maxQueueWait)] : []),
    ],
    (l) => l.includes('model version active'),
  );
  const url = `http://127.0.0.1:${port}/score`;
  const score = () => fetch(url, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: new Uint8Array(image) });
  try {
    const unloaded = await sequentialLatency(async () => {
      const response = await score();
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`/score answered ${response.status} unloaded`);
    }, SECONDS);
    const unloadedMiB = await residentMiB(child.pid!);

    // Sustainable: what the model answers with its in-flight places kept full.
    let done = 0;
    const closedEnd = performance.now() + SECONDS * 1000;
    const closedStart = performance.now();
    await Promise.all(
      Array.from({ length: limits.inFlight }, async () => {
        while (performance.now() < closedEnd) {
          const response = await score();
          await response.arrayBuffer();
          if (response.status === 200) done++;
        }
      }),
    );
    const sustainable = done / ((performance.now() - closedStart) / 1000);

    // Twice that, offered at a steady pace whatever the answers (an open loop: clients do not wait for each other).
    const offered = 2 * sustainable;
    const accepted: number[] = [];
    let shed = 0;
    let failed = 0;
    const pending: Array<Promise<void>> = [];
    const start = performance.now();
    for (let sent = 0; sent < offered * 2 * SECONDS; sent++) {
      const wait = start + (sent * 1000) / offered - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const t0 = performance.now();
      pending.push(
        score().then(
          async (response) => {
            await response.arrayBuffer();
            if (response.status === 200) accepted.push(performance.now() - t0);
            else if (response.status === 503) shed++;
            else failed++;
          },
          () => void failed++,
        ),
      );
    }
    await Promise.all(pending);
    const elapsed = (performance.now() - start) / 1000;
    const endMiB = await residentMiB(child.pid!);
    accepted.sort((a, b) => a - b);
    const p99 = percentile(accepted, 99);
    const total = accepted.length + shed + failed;
    const latencyRatio = p99 / unloaded.p99;
    const memoryRatio = endMiB / unloadedMiB;
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
    return (
      `| ${label}: ${limits.inFlight} in flight, ${limits.waiting} waiting${limits.maxQueueWait !== undefined ? `, wait budget ${limits.maxQueueWait}` : ''} | ${sustainable.toFixed(1)} | ${(total / elapsed).toFixed(1)} | ${(accepted.length / elapsed).toFixed(1)} | ` +
      `${((100 * shed) / total).toFixed(1)}% | ${failed} | ${p99.toFixed(0)} / ${unloaded.p99.toFixed(0)} ms = ${latencyRatio.toFixed(2)}x (${verdict(latencyRatio <= 2)}) | ` +
      `${endMiB.toFixed(0)} / ${unloadedMiB.toFixed(0)} MiB = ${memoryRatio.toFixed(2)}x (${verdict(memoryRatio <= 1.2)}) |`
    );
  } finally {
    await stopChild(child);
  }
}

export async function admissionBench(): Promise<string[]> {
  const image = await readFile(path.join(root, 'node_modules/@vladmandic/face-api/demo/sample1.jpg'));
  const defaults = defaultAdmissionLimits();
  return [
    `## Admission at twice the sustainable rate (/score, JPEG 1920x1280, bundled model; ${2 * SECONDS} s open loop)`,
    '',
    '| limits | sustainable req/s | offered req/s | accepted req/s | shed | failed | p99 accepted / unloaded p99 (goal ≤ 2x) | resident memory end / unloaded (goal ≤ 1.2x) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    await overloadRow(image, defaults, 'defaults'),
    await overloadRow(image, { inFlight: defaults.inFlight, waiting: defaults.inFlight }, '--max-waiting = in flight'),
    await overloadRow(image, { ...defaults, maxQueueWait: 'auto' }, '--max-queue-wait auto'),
    '',
    'Wait budget auto: a request is refused at once when its expected wait ((waiting + 1) / in flight x the average recent service time) passes the fastest recent service time.',
    '',
    'Sustainable: a closed loop with as many clients as scored at once. Offered: requests at a steady pace, each on its own connection, whatever the answers. Failed: neither 200 nor 503.',
    '',
  ];
}
