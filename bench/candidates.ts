/**
 * Candidate versions (issue 15): what shadowing a candidate costs the active path. One module serves the bundled
 * BlazeFace three times: alone, with a candidate (the same model, another version) shadowed on 10% of the inputs,
 * and on all of them. `/score` with a photo, at 1 client (a sequential loop) and 8 (autocannon); the slots take
 * turns within each round and each figure is its median over the rounds (the machine is shared). The target: the
 * active path's p99 with a candidate at most 1.1x without.
 * `node dist/bench/candidates.js` runs it alone; `npm run bench` runs it with the rest.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { freePort, startModule, stopChild } from './children.js';
import { percentile, post, sequentialLatency } from './measure.js';

const require = createRequire(import.meta.url);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TARGET = 1.1;
/** Requests a second of the paced row: a camera at 5 fps. */
const PACE = 5;
/** The paced row's figures last long enough for a p99 of at least 100 requests. */
const PACED_SECONDS = Math.max(SECONDS, 100 / PACE);

const face = (version: string) => ({ version, uri: BUNDLED_MODEL.uri, ...BUNDLED_MODEL.settings });
const SLOTS = [
  { name: 'alone', label: 'no candidate', slot: face('1') },
  { name: 'shadow10', label: 'candidate, shadowShare 0.1', slot: { ...face('1'), candidate: { ...face('2'), shadowShare: 0.1 } } },
  { name: 'shadow100', label: 'candidate, shadowShare 1', slot: { ...face('1'), candidate: { ...face('2'), shadowShare: 1 } } },
];

interface Figures {
  p50: number;
  p99: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function oneClient(url: string, body: Buffer): Promise<Figures> {
  const latency = await sequentialLatency(() => post({ url, headers: { 'content-type': 'image/jpeg' }, body }), SECONDS, 5);
  return { p50: latency.p50, p99: latency.p99 };
}

/** A camera's pace: one request every 1/PACE s whatever the answers do (an open loop), latency of each. */
async function paced(url: string, body: Buffer): Promise<Figures> {
  const times: number[] = [];
  const sent: Array<Promise<void>> = [];
  const start = performance.now();
  for (let i = 0; i < PACED_SECONDS * PACE; i++) {
    const due = start + (i * 1000) / PACE;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
    const t0 = performance.now();
    sent.push(post({ url, headers: { 'content-type': 'image/jpeg' }, body }).then(() => void times.push(performance.now() - t0)));
  }
  await Promise.all(sent);
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

async function eightClients(url: string, body: Buffer): Promise<Figures> {
  const result = await autocannon({ url, method: 'POST', headers: { 'content-type': 'image/jpeg' }, body, connections: 8, duration: SECONDS });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return { p50: result.latency.p50, p99: result.latency.p99 };
}

/** Shadow samples and drops of a slot's candidate so far, from /status. */
async function shadowCounts(base: string, name: string): Promise<{ samples: number; dropped: number }> {
  const status = (await (await fetch(`${base}/status`)).json()) as { models: Record<string, { candidate: { shadow: { samples: number; dropped: number } | null } | null }> };
  const shadow = status.models[name]?.candidate?.shadow;
  return { samples: shadow?.samples ?? 0, dropped: shadow?.dropped ?? 0 };
}

export async function candidatesBench(): Promise<string[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-bench-candidates-'));
  const desired = path.join(dir, 'desired.json');
  await writeFile(desired, JSON.stringify({ models: Object.fromEntries(SLOTS.map(({ name, slot }) => [name, slot])) }));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const { child } = await startModule(
    ['--port', String(port), '--host', '127.0.0.1', '--store', path.join(dir, 'store'), '--desired', desired],
    (l) => l.includes('model version active'),
  );
  const photo = await readFile(require.resolve('@vladmandic/face-api/demo/sample1.jpg'));
  const loadBefore = (await readFile('/proc/loadavg', 'utf8')).trim();
  const lines: string[] = [];
  const verdicts: string[] = [];
  try {
    await until(async () => {
      const status = (await (await fetch(`${base}/status`).catch(() => undefined))?.json().catch(() => undefined)) as { models?: Record<string, { status: string; candidate: { status: string } | null }> } | undefined;
      return SLOTS.every(({ name }) => status?.models?.[name]?.status === 'active' && (name === 'alone' || status.models?.[name]?.candidate?.status === 'active'));
    });
    for (const [clients, measure] of [
      [`${PACE}/s`, paced],
      ['1', oneClient],
      ['8', eightClients],
    ] as const) {
      const figures = new Map<string, Figures[]>(SLOTS.map(({ name }) => [name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (let i = 0; i < SLOTS.length; i++) {
          const { name } = SLOTS[(round + i) % SLOTS.length]!;
          figures.get(name)!.push(await measure(`${base}/models/${name}/score`, photo));
          // Shadow work left over from this slot does not run into the next one's figures.
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
        process.stderr.write(`candidates: ${clients}, round ${round + 1}/${ROUNDS}\n`);
      }
      const alone = figures.get('alone')!;
      for (const { name, label } of SLOTS) {
        const rounds = figures.get(name)!;
        const counts = name === 'alone' ? undefined : await shadowCounts(base, name);
        const ratios = rounds.map((f, round) => f.p99 / alone[round]!.p99);
        lines.push(
          `| ${clients} | ${label} | ${median(rounds.map((f) => f.p50)).toFixed(1)} | ${median(rounds.map((f) => f.p99)).toFixed(1)} | ${name === 'alone' ? '-' : ratios.map((r) => `${r.toFixed(2)}x`).join(', ')} | ${counts ? `${counts.samples} / ${counts.dropped}` : '-'} |`,
        );
        if (name !== 'alone') {
          // The median round: a p99 is the slowest one or two requests of a round, which one stray pause decides.
          const typical = median(ratios);
          verdicts.push(`- ${clients}, ${label}: p99 with / without, median round ${typical.toFixed(2)}x (goal ≤ ${TARGET}x): **${typical <= TARGET ? 'met' : 'missed'}**`);
        }
      }
    }
  } finally {
    await stopChild(child);
  }
  const loadAfter = (await readFile('/proc/loadavg', 'utf8')).trim();
  return [
    `## Candidate versions: the active path with a candidate shadowed (bundled BlazeFace, /score with a 1920×1280 JPEG; ${SECONDS} s per figure, ${PACED_SECONDS} s for the paced one, ${ROUNDS} rounds)`,
    '',
    `/proc/loadavg before: ${loadBefore}; after: ${loadAfter}`,
    '',
    '| load | slot | p50 ms | p99 ms | p99 / no candidate, per round | shadow samples / dropped (so far) |',
    '| ---: | --- | ---: | ---: | --- | --- |',
    ...lines,
    '',
    ...verdicts,
    '',
    `Load: ${PACE}/s sends a request every ${1000 / PACE} ms whatever the answers do (a camera's pace, one connection at a time); 1 is a sequential loop (the next request as soon as the last is answered); 8 is autocannon with 8 connections. A shadow run waits until its slot has been quiet for twice the active version's time on the input, one run at a time, and is dropped (counted) after 2 s: under the closed loops the slot is never quiet that long, so shared inputs are dropped rather than run.`,
    '',
  ];
}

async function until(check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 120_000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('the slots did not become active in 2 minutes');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.stdout.write(`${(await candidatesBench()).join('\n')}\n`);
