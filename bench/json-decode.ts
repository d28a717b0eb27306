/**
 * The JSON decode of the `/score` body alone, in process: the bench's 4 MB body (the bundled model's float32
 * input, the numbers as a float32 array prints them) through the scanner, and through the scanner and the
 * tensor checks (what `/score` does before session.run), against JSON.parse of the same text. CPU time per MB,
 * best and median of several runs, and the garbage collections V8 ran during them (garbage per number shows
 * there first). `node dist/bench/json-decode.js [runs]` alone; run.ts builds its body here.
 */
import { Buffer } from 'node:buffer';
import { cpuUsage } from 'node:process';
import { PerformanceObserver } from 'node:perf_hooks';
import { readFile } from 'node:fs/promises';
import { feedsFromScoreBody } from '../src/pipeline/json-tensors.js';
import { scanJson } from '../src/pipeline/json-scan.js';
import { MAX_JSON_DEPTH } from '../src/server/json-depth.js';
import type { ModelSignature } from '../src/engine/tensor.js';

/** The bundled model's input: uniform values in [-1, 1) from a fixed linear congruential sequence, as float32. */
export function makeInput(shape: number[]): Float32Array {
  const data = new Float32Array(shape.reduce((a, b) => a * b));
  let seed = 1;
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    data[i] = (seed / 2 ** 31) * 2 - 1;
  }
  return data;
}

/** `data` as the nested arrays of `shape` (what a client's tolist() gives). */
export function nested(data: Float32Array, shape: number[]): unknown {
  let offset = 0;
  const build = (depth: number): unknown =>
    depth === shape.length - 1 ? Array.from(data.subarray(offset, (offset += shape[depth]!))) : Array.from({ length: shape[depth]! }, () => build(depth + 1));
  return build(0);
}

/** CPU milliseconds of one call of `work`: best and median of `runs` after a warm-up. */
function cpuMillis(work: () => unknown, runs: number): { best: number; median: number } {
  for (let i = 0; i < 5; i++) work();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const before = cpuUsage();
    work();
    const used = cpuUsage(before);
    times.push((used.user + used.system) / 1000);
  }
  times.sort((a, b) => a - b);
  return { best: times[0]!, median: times[times.length >> 1]! };
}

/** How many collections V8 ran during `runs` calls of `work` (the observer reports them after a turn). */
async function collections(work: () => unknown, runs: number): Promise<number> {
  let count = 0;
  const observer = new PerformanceObserver((list) => (count += list.getEntries().length));
  observer.observe({ entryTypes: ['gc'] });
  for (let i = 0; i < runs; i++) work();
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  return count;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 30);
  const shape = [1, 256, 256, 3];
  const json = Buffer.from(JSON.stringify({ data: nested(makeInput(shape), shape) }));
  const megabytes = json.length / 1e6;
  const signature: ModelSignature = { inputs: [{ name: 'input:0', type: 'float32', shape }], outputs: [] };
  const rows: Array<[string, () => unknown]> = [
    ['JSON.parse (text to nested arrays, no checks)', () => JSON.parse(json.toString('utf8'))],
    ['scanner', () => scanJson(json, 0, json.length, MAX_JSON_DEPTH)],
    ['scanner + tensor checks (what /score does)', () => feedsFromScoreBody('face', signature, scanJson(json, 0, json.length, MAX_JSON_DEPTH))],
  ];
  const load = (await readFile('/proc/loadavg', 'utf8').catch(() => '?')).trim();
  console.log(`body ${megabytes.toFixed(2)} MB, ${runs} runs each, CPU time, load ${load}`);
  console.log(`| decode | best ms | median ms | median µs/MB | collections in ${runs} runs |`);
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const [name, work] of rows) {
    const { best, median } = cpuMillis(work, runs);
    const gcs = await collections(work, runs);
    console.log(`| ${name} | ${best.toFixed(1)} | ${median.toFixed(1)} | ${((median * 1000) / megabytes).toFixed(0)} | ${gcs} |`);
  }
  console.log(`load after: ${(await readFile('/proc/loadavg', 'utf8').catch(() => '?')).trim()}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
