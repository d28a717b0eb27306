/**
 * The remote (OIP accelerator) target against the local CPU, on the bundled model and this machine: p50 at one
 * request in flight and throughput at 8, with the binary and the JSON wire formats. The servers are the tests'
 * OIP servers, each in a child process (`node dist/bench/remote.js serve binary|json`), so that the module's
 * event loop is not theirs. A bare client sends the same pre-encoded bytes over its own kept-alive sockets: the
 * engine's overhead on the hop is the remote row over the bare row.
 */
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Engine } from '../src/engine/engine.js';
import { cpuTarget } from '../src/engine/local-targets.js';
import { loadModelVersion, type ModelVersion } from '../src/engine/loaded-version.js';
import { encodeRemoteRequest } from '../src/engine/oip-wire.js';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { readModelPackage } from '../src/models/package.js';
import { BinaryOipServer } from '../test/support/oip-server-binary.js';
import { startJsonOipServer } from '../test/support/oip-server-json.js';
import { startChild } from './children.js';
import { concurrentRate, p50TakingTurns, sequentialLatency, type Latency } from './measure.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CLIENTS = 8;
const here = fileURLToPath(import.meta.url);
const INPUT = 'input:0';
const SHAPE = [1, 256, 256, 3];

/** Values with all their digits, so that the JSON rows carry what real pixels would. */
function input(): Float32Array {
  const data = new Float32Array(SHAPE.reduce((a, b) => a * b));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37);
  return data;
}

async function serve(kind: string): Promise<void> {
  const files = { face: BUNDLED_MODEL.uri };
  const url = kind === 'binary' ? (await BinaryOipServer.start(files)).url : (await startJsonOipServer(files)).url;
  process.stdout.write(`${url}\n`);
}

/** The same bytes every time, over its own pool of kept-alive sockets; the answer is read whole and dropped. */
function bareClient(url: string, body: Buffer, headers: Record<string, string | number>): () => Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const target = `${url}/v2/models/face/infer`;
  return () =>
    new Promise((resolve, reject) => {
      const request = http.request(target, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (response) => {
        response.resume();
        response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`${target} answered ${response.statusCode}`))));
      });
      request.on('error', reject);
      request.end(body);
    });
}

interface Row {
  name: string;
  latency: Latency;
  rate8: number;
}

async function measure(name: string, work: () => Promise<unknown>): Promise<Row> {
  return { name, latency: await sequentialLatency(work, SECONDS), rate8: await concurrentRate(work, CLIENTS, SECONDS) };
}

async function remoteVersion(url: string, log: pino.Logger): Promise<ModelVersion> {
  const pkg = await readModelPackage(BUNDLED_MODEL.uri, BUNDLED_MODEL.settings);
  const placement = { target: 'fpga' as const, fallback: 'none' as const, accelerator: { url, model: 'face' } };
  const target = await new Engine({ onProbe: () => undefined }).place('face', placement, () => undefined);
  return loadModelVersion({ name: 'face', version: 'bench', pkg, target, log });
}

export async function remoteBench(): Promise<string[]> {
  const log = pino({ level: 'silent' });
  const feeds = { [INPUT]: { type: 'float32', dims: SHAPE, data: input() } };
  const binary = await startChild([here, 'serve', 'binary'], (l) => l.startsWith('http'));
  const json = await startChild([here, 'serve', 'json'], (l) => l.startsWith('http'));
  const local = await loadModelVersion({ name: 'face', version: 'bench', pkg: await readModelPackage(BUNDLED_MODEL.uri, BUNDLED_MODEL.settings), target: cpuTarget(), log });
  const viaBinary = await remoteVersion(binary.line, log);
  const viaJson = await remoteVersion(json.line, log);
  const names = viaBinary.signature.outputs.map((o) => o.name);
  const binaryRequest = encodeRemoteRequest(feeds, names, true);
  const jsonRequest = encodeRemoteRequest(feeds, names, false);
  const paths: Array<[string, () => Promise<unknown>]> = [
    ['local CPU, in process (version.infer)', () => local.infer(feeds)],
    ['remote target, binary extension', () => viaBinary.infer(feeds)],
    ['bare client → the same binary server', bareClient(binary.line, Buffer.concat(binaryRequest.body), binaryRequest.headers)],
    ['remote target, JSON', () => viaJson.infer(feeds)],
    ['bare client → the same JSON server', bareClient(json.line, Buffer.concat(jsonRequest.body), jsonRequest.headers)],
  ];
  const rounds: Row[][] = paths.map(() => []);
  const paired: Array<{ binary: number[]; json: number[] }> = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, [name, work]] of paths.entries()) {
        process.stderr.write(`remote round ${round + 1}/${ROUNDS}: ${name}\n`);
        rounds[i]!.push(await measure(name, work));
      }
      process.stderr.write(`remote round ${round + 1}/${ROUNDS}: remote and bare alternately\n`);
      paired.push({ binary: await p50TakingTurns([paths[1]![1], paths[2]![1]], SECONDS), json: await p50TakingTurns([paths[3]![1], paths[4]![1]], SECONDS) });
    }
  } finally {
    binary.child.kill();
    json.child.kill();
    await Promise.all([local.release(), viaBinary.release(), viaJson.release()]);
  }
  const mid = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const rows = rounds.map((list) => ({ name: list[0]!.name, p50: mid(list.map((r) => r.latency.p50)), p99: mid(list.map((r) => r.latency.p99)), rate8: mid(list.map((r) => r.rate8)) }));
  const [cpu, remoteBinary, , remoteJson] = rows as [typeof rows[0], typeof rows[0], typeof rows[0], typeof rows[0], typeof rows[0]];
  const binaryRatio = mid(paired.map((p) => p.binary[0]! / p.binary[1]!));
  const jsonRatio = mid(paired.map((p) => p.json[0]! / p.json[1]!));
  return [
    `## Remote target (OIP accelerator server) against the local CPU`,
    ``,
    `Bundled model, float32 input ${SHAPE.join('×')}; the servers are the tests' OIP servers running ONNX Runtime on this same machine's CPU, so the remote rows show the cost of the hop, not an accelerator's speed. Median of ${ROUNDS} rounds, ${SECONDS} s each.`,
    ``,
    `| path | p50 ms (1 in flight) | p99 ms (1 in flight) | req/s (${CLIENTS} in flight) |`,
    `| --- | ---: | ---: | ---: |`,
    ...rows.map((r) => `| ${r.name} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.rate8.toFixed(1)} |`),
    ``,
    `| target | measured | goal | |`,
    `| --- | ---: | ---: | --- |`,
    `| remote binary p50 / bare client p50 (alternate requests) | ${binaryRatio.toFixed(3)}x | ≤ 1.10x | ${binaryRatio <= 1.1 ? 'met' : 'MISSED'} |`,
    `| remote JSON p50 / bare client p50 (alternate requests; the bare client's JSON is encoded once) | ${jsonRatio.toFixed(3)}x | | |`,
    `| hop cost at p50: remote binary − local CPU | ${(remoteBinary.p50 - cpu.p50).toFixed(2)} ms | | |`,
    `| hop cost at p50: remote JSON − local CPU | ${(remoteJson.p50 - cpu.p50).toFixed(2)} ms | | |`,
    ``,
  ];
}

if (process.argv[1] === here && process.argv[2] === 'serve') await serve(process.argv[3] ?? 'binary');
else if (process.argv[1] === here) process.stdout.write(`${(await remoteBench()).join('\n')}\n`);
