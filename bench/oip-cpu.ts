/**
 * What the service adds per OIP binary request, in a figure a loaded machine spoils less: the CPU time the server
 * process spends per request (utime + stime from /proc over a fixed number of requests), the service against the
 * bare node:http server, same model, same bodies. Wall-clock ratios on a shared machine swing with whatever else
 * runs; CPU time counts only the server's own work (though ONNX Runtime's pool threads spin longer while they wait
 * on contended cores, so the process figure still moves some). Also counted: V8's collections in the same window
 * (`--trace-gc` lines), and the main thread alone (JS, the HTTP parser and the calling thread's share of
 * session.run; the pool threads are in the process figure only). Both servers run under `--cpu-prof`, and a second
 * table splits each one's main thread per request into session.run, collections and the rest (profile-split.ts):
 * the two run the same session.run, so the rest is what the service adds, in a figure that a slower machine
 * scales but does not blur the way it blurs wall-clock ratios.
 *
 * `node dist/bench/oip-cpu.js` alone, or the `oip-cpu` section of run.ts. `BENCH_CPU_PROF=DIR` keeps the
 * profiles in DIR (otherwise a temporary folder, removed). `BENCH_SERVICE_FLAGS` adds Node or V8 flags to the
 * service alone (to try a GC setting against the same bare server).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { cpuMs } from '../test/support/proc-cpu.js';
import { makeInput } from './json-decode.js';
import { stopChild } from './children.js';
import { OIP_INPUT_NAME, OIP_INPUT_SHAPE, oipBinaryBody, startOipServers, type OipServer } from './oip-request.js';
import { readProfileOf, splitProfile, type ProfileSplit } from './profile-split.js';

const REQUESTS = Number(process.env.BENCH_CPU_REQUESTS ?? 400);
/** Requests before each CPU window, to warm the connections and the JIT (the profiles, one per run, hold them too). */
const WARM_UP = 40;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CLIENTS = [1, 8];
/** Counts the `--trace-gc` lines a child prints, by kind. */
function gcCounter(server: OipServer): { scavenges: number; markCompacts: number } {
  const counts = { scavenges: 0, markCompacts: 0 };
  createInterface({ input: server.child.stdout! }).on('line', (line) => {
    if (line.includes(': Scavenge')) counts.scavenges++;
    else if (line.includes(': Mark-Compact')) counts.markCompacts++;
  });
  return counts;
}

interface Sample {
  /** Process CPU per request, ms. */
  process: number;
  /** Main thread CPU per request, ms. */
  main: number;
  scavenges: number;
  markCompacts: number;
}

async function sample(server: OipServer, gc: { scavenges: number; markCompacts: number }, call: ReturnType<typeof oipBinaryBody>, connections: number): Promise<Sample> {
  const send = async (amount: number) => {
    const result = await autocannon({ url: server.url, method: 'POST', headers: call.headers, body: call.body, connections, amount });
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`${server.url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  };
  await send(WARM_UP);
  // A collection logged just after the warm-up belongs to it, not to the window.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const pid = server.child.pid!;
  const before = { process: await cpuMs(`/proc/${pid}/stat`), main: await cpuMs(`/proc/${pid}/task/${pid}/stat`), ...gc };
  await send(REQUESTS);
  const after = { process: await cpuMs(`/proc/${pid}/stat`), main: await cpuMs(`/proc/${pid}/task/${pid}/stat`) };
  await new Promise((resolve) => setTimeout(resolve, 100));
  return {
    process: (after.process - before.process) / REQUESTS,
    main: (after.main - before.main) / REQUESTS,
    scavenges: gc.scavenges - before.scavenges,
    markCompacts: gc.markCompacts - before.markCompacts,
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export interface CpuRatio {
  clients: number;
  /** Process CPU per request, service / bare, in each round. */
  rounds: number[];
}

/** The section's table, and the per-round ratios for run.ts's targets. */
export async function oipCpuBench(): Promise<{ lines: string[]; ratios: CpuRatio[] }> {
  const call = oipBinaryBody(OIP_INPUT_NAME, OIP_INPUT_SHAPE, makeInput(OIP_INPUT_SHAPE));
  const profileDir = process.env.BENCH_CPU_PROF ?? (await mkdtemp(path.join(tmpdir(), 'edge-infer-cpu-prof-')));
  const flags = ['--trace-gc', '--cpu-prof', `--cpu-prof-dir=${profileDir}`];
  const { bare, service } = await startOipServers(flags, process.env.BENCH_SERVICE_FLAGS?.split(' ').filter(Boolean));
  const servers = { bare: { server: bare, gc: gcCounter(bare) }, service: { server: service, gc: gcCounter(service) } };
  const results = new Map<string, Sample[]>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const clients of CLIENTS) {
        // The two take turns within a round, so that a change in the machine's load falls on both.
        for (const [name, { server, gc }] of Object.entries(servers)) {
          const key = `${name} ${clients}`;
          results.set(key, [...(results.get(key) ?? []), await sample(server, gc, call, clients)]);
          process.stderr.write(`oip-cpu round ${round + 1}/${ROUNDS}: ${key} client(s) (load ${(await readFile('/proc/loadavg', 'utf8')).split(' ', 3).join(' ')})\n`);
        }
      }
    }
  } finally {
    // Both exit, so that --cpu-prof writes their profiles.
    await Promise.all([stopChild(bare.child), stopChild(service.child)]);
  }
  const lines = [
    `## OIP binary: CPU per request, service / bare`,
    ``,
    `CPU time of the server process per request (utime + stime over ${REQUESTS} requests), median of ${ROUNDS} rounds; the main thread alone beside it. Collections are V8's (\`--trace-gc\`) in the same ${REQUESTS} requests. Both servers run with --cpu-prof (its sampling costs each a little CPU) for the table after this one.`,
    ``,
    `| clients | server | CPU ms/request | main thread ms/request | scavenges | mark-compacts |`,
    `| ---: | --- | ---: | ---: | ---: | ---: |`,
  ];
  const ratios: CpuRatio[] = [];
  for (const clients of CLIENTS) {
    for (const name of Object.keys(servers)) {
      const list = results.get(`${name} ${clients}`)!;
      lines.push(`| ${clients} | ${name} | ${median(list.map((s) => s.process)).toFixed(2)} | ${median(list.map((s) => s.main)).toFixed(2)} | ${median(list.map((s) => s.scavenges))} | ${median(list.map((s) => s.markCompacts))} |`);
    }
    const ofService = results.get(`service ${clients}`)!;
    const ofBare = results.get(`bare ${clients}`)!;
    ratios.push({ clients, rounds: ofService.map((s, i) => s.process / ofBare[i]!.process) });
    const mainRounds = ofService.map((s, i) => s.main / ofBare[i]!.main);
    lines.push(`| ${clients} | service / bare | ${median(ratios.at(-1)!.rounds).toFixed(3)}x | ${median(mainRounds).toFixed(3)}x | | |`);
  }
  lines.push('');
  lines.push(...(await profileLines(profileDir, { bare, service })));
  if (!process.env.BENCH_CPU_PROF) await rm(profileDir, { recursive: true, force: true });
  return { lines, ratios };
}

/** The profiles' table: each server's main thread per request, split (profile-split.ts). */
async function profileLines(dir: string, servers: Record<'bare' | 'service', OipServer>): Promise<string[]> {
  const served = ROUNDS * CLIENTS.length * (WARM_UP + REQUESTS);
  const splits: Record<string, ProfileSplit> = {};
  for (const [name, server] of Object.entries(servers)) splits[name] = splitProfile(await readProfileOf(dir, server.child.pid!), served);
  const { bare, service } = splits as Record<'bare' | 'service', ProfileSplit>;
  const ms = (value: number) => value.toFixed(3);
  const parts = (split: ProfileSplit) => split.parts.slice(0, 6).map((p) => `${p.frame} ${ms(p.ms)}`).join('; ');
  const total = (split: ProfileSplit) => split.run + split.gc + split.rest;
  return [
    `### Where each server's main thread spent its time per request (the CPU profiles)`,
    ``,
    `All ${served} requests each server served (warm-ups included), from its first sample inside session.run to its last, idle left out (bench/profile-split.ts). The rest's parts are named by the first frame of our own code above each sample, Node's own by name.`,
    ``,
    `| server | session.run ms | garbage collection ms | the rest ms | total ms | the rest's largest parts, ms |`,
    `| --- | ---: | ---: | ---: | ---: | --- |`,
    ...Object.entries(splits).map(([name, split]) => `| ${name} | ${ms(split.run)} | ${ms(split.gc)} | ${ms(split.rest)} | ${ms(total(split))} | ${parts(split)} |`),
    `| service - bare | ${ms(service.run - bare.run)} | ${ms(service.gc - bare.gc)} | ${ms(service.rest - bare.rest)} | ${ms(total(service) - total(bare))} | |`,
    ``,
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { lines } = await oipCpuBench();
  process.stdout.write(`${lines.join('\n')}\n`);
}
