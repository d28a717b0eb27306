/**
 * `edge-infer profile MODEL_OR_PACKAGE`: Azure ML's profile() for the device. Loads the model as the module
 * would (same package reading, same engine, same target placement), runs it on its input sample, a given image
 * or zeros of its input shape at rising concurrency, and recommends the container's limits and `threads` from
 * what it measured, each with the arithmetic behind it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Engine } from '../engine/engine.js';
import { loadModelVersion, zeroFeeds, type ModelVersion } from '../engine/loaded-version.js';
import { concurrencyLevels, measureLevel, type LevelFigures } from '../engine/profiler.js';
import type { Running, TargetName } from '../engine/target.js';
import { isEdgeInferError, messageOf } from '../errors.js';
import { locateModel } from '../models/locate.js';
import { readModelPackage } from '../models/package.js';

export const PROFILE_USAGE = `Usage: edge-infer profile MODEL_OR_PACKAGE [--target cpu|gpu|fpga] [--accelerator URL]
                          [--image FILE] [--concurrency N] [--duration S] [--spin-wait on|off] [--json]

  Runs the model (a .onnx file, a package folder or archive) on its inputSample, on --image, or on zeros of
  its input shape, for S seconds (default 5) at each of 1, 2, 4, ... N clients (default: the cores), and prints
  latency, throughput, peak memory and CPU use, then the createOptions and threads it recommends.
  --spin-wait: as the module's setting (default off); profile both ways to see what spinning buys this model.`;

const MIB = 1024 * 1024;

export interface ProfileFigures {
  model: string;
  target: Running & { requested: TargetName };
  input: string;
  cores: number;
  /** Whether ONNX Runtime's threads spun between runs, as the module's --spin-wait. */
  spinWait: boolean;
  levels: LevelFigures[];
  peakRssMiB: number;
}

export interface Recommendation {
  threads: number;
  memoryBytes: number;
  nanoCpus: number;
  /** One line of reasoning for each figure. */
  why: { threads: string; memory: string; nanoCpus: string };
}

/**
 * The arithmetic, from measured figures only:
 * - threads: the cores one client kept busy, to the nearest whole core (more intra-op threads than that would
 *   wait), at least 1 and at most the machine's cores;
 * - NanoCpus: the cores used at the level with the best throughput, rounded up to half a core;
 * - Memory: twice the peak resident memory, rounded up to 64 MiB, because a hot swap holds the old and the new
 *   version at once.
 */
export function recommend(figures: Pick<ProfileFigures, 'levels' | 'peakRssMiB' | 'cores'>): Recommendation {
  const one = figures.levels[0]!;
  const best = figures.levels.reduce((a, b) => (b.throughput > a.throughput ? b : a));
  const threads = Math.min(figures.cores, Math.max(1, Math.round(one.cpuCores)));
  const halfCores = Math.max(1, Math.ceil(best.cpuCores * 2));
  const memoryMiB = Math.ceil((figures.peakRssMiB * 2) / 64) * 64;
  return {
    threads,
    memoryBytes: memoryMiB * MIB,
    nanoCpus: halfCores * 0.5e9,
    why: {
      threads: `one client kept ${one.cpuCores.toFixed(2)} cores busy; more intra-op threads than ${threads} would wait (machine: ${figures.cores} cores)`,
      memory: `peak resident ${figures.peakRssMiB.toFixed(0)} MiB × 2 (a hot swap holds two versions at once), rounded up to 64 MiB: ${memoryMiB} MiB`,
      nanoCpus: `the best throughput, ${best.throughput.toFixed(1)}/s with ${best.concurrency} in flight, used ${best.cpuCores.toFixed(2)} cores; rounded up to half a core: ${halfCores / 2}`,
    },
  };
}

interface Options {
  location: string;
  target: TargetName;
  accelerator?: string;
  image?: string;
  concurrency: number;
  seconds: number;
  spinWait: boolean;
  json: boolean;
}

function parse(argv: string[]): Options | string {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        target: { type: 'string' },
        accelerator: { type: 'string' },
        image: { type: 'string' },
        concurrency: { type: 'string' },
        duration: { type: 'string' },
        'spin-wait': { type: 'string' },
        json: { type: 'boolean' },
      },
    });
  } catch (error) {
    return messageOf(error);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) return 'name one model or package';
  const target = values.target ?? 'cpu';
  if (target !== 'cpu' && target !== 'gpu' && target !== 'fpga') return `--target must be cpu, gpu or fpga, not "${target}"`;
  if (target === 'fpga' && !values.accelerator) return '--target fpga needs --accelerator URL';
  const concurrency = Number(values.concurrency ?? Math.max(1, cpus().length));
  const seconds = Number(values.duration ?? 5);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) return '--concurrency must be a whole number from 1 to 256';
  if (!(seconds > 0 && seconds <= 3600)) return '--duration must be seconds, more than 0';
  const spinWait = values['spin-wait'] ?? 'off';
  if (spinWait !== 'on' && spinWait !== 'off') return `--spin-wait must be on or off, not "${spinWait}"`;
  return {
    location: positionals[0]!,
    target,
    ...(values.accelerator ? { accelerator: values.accelerator } : {}),
    ...(values.image ? { image: values.image } : {}),
    concurrency,
    seconds,
    spinWait: spinWait === 'on',
    json: values.json ?? false,
  };
}

/** What one request is: the given image, the package's input sample, or zeros through the model alone. */
async function workOf(version: ModelVersion, image: string | undefined): Promise<{ input: string; work: () => Promise<unknown> }> {
  if (image) {
    const bytes = await readFile(image);
    const contentType = /\.png$/i.test(image) ? 'image/png' : /\.webp$/i.test(image) ? 'image/webp' : 'image/jpeg';
    return { input: `image ${path.basename(image)}`, work: () => version.score({ kind: 'image', image: bytes, contentType }) };
  }
  const sample = version.settings.inputSample;
  if (sample !== undefined) return { input: 'the package inputSample', work: () => version.score({ kind: 'json', body: sample }) };
  const feeds = zeroFeeds(version.signature);
  return { input: 'zeros of the input shape (the model alone; give --image for the whole path)', work: () => version.infer(feeds) };
}

export async function profileCommand(argv: string[], _env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  const options = parse(argv);
  if (typeof options === 'string') {
    out(`${options}\n\n${PROFILE_USAGE}`);
    return 2;
  }
  const progress = (line: string) => process.stderr.write(`\r\x1b[K${line}`);
  const store = await mkdtemp(path.join(tmpdir(), 'edge-infer-profile-'));
  let version: ModelVersion | undefined;
  try {
    const located = await locateModel({ uri: options.location }, store);
    const pkg = await readModelPackage(located.path);
    const engine = new Engine({ onProbe: () => undefined, spinWait: options.spinWait });
    const placement = { target: options.target, fallback: 'cpu' as const, ...(options.accelerator ? { accelerator: { url: options.accelerator } } : {}) };
    const target = await engine.place('profile', placement, () => undefined);
    progress('loading and warming up...');
    version = await loadModelVersion({ name: 'profile', version: 'profile', pkg, target, log: pino({ level: 'silent' }) });
    const { input, work } = await workOf(version, options.image);
    const levels: LevelFigures[] = [];
    for (const concurrency of concurrencyLevels(options.concurrency)) {
      progress(`measuring ${concurrency} client${concurrency > 1 ? 's' : ''} for ${options.seconds} s...`);
      levels.push(await measureLevel(work, concurrency, options.seconds));
    }
    progress('');
    const figures: ProfileFigures = {
      model: path.basename(pkg.modelFile ?? pkg.dir),
      target: { ...target.running, requested: options.target },
      input,
      cores: cpus().length,
      spinWait: options.spinWait,
      levels,
      // maxRSS is in KiB: the most this process held at once, loading included.
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
    };
    const advice = recommend(figures);
    if (options.json) out(JSON.stringify({ ...figures, recommendation: advice }));
    else for (const line of report(figures, advice)) out(line);
    return 0;
  } catch (error) {
    progress('');
    out(`edge-infer profile: ${isEdgeInferError(error) ? `${error.code}: ` : ''}${messageOf(error)}`);
    return 1;
  } finally {
    await version?.release();
    await rm(store, { recursive: true, force: true });
  }
}

function report(figures: ProfileFigures, advice: Recommendation): string[] {
  const { target } = figures;
  const where = target.target === target.requested ? target.target : `${target.target} (asked ${target.requested}: ${target.reason})`;
  const pad = (text: string | number, width: number) => String(text).padStart(width);
  return [
    `${figures.model} on ${where}; input: ${figures.input}; ONNX Runtime's threads ${figures.spinWait ? 'spin' : 'sleep'} between runs (--spin-wait ${figures.spinWait ? 'on' : 'off'})`,
    '',
    `${pad('clients', 7)} ${pad('req/s', 9)} ${pad('p50 ms', 8)} ${pad('p99 ms', 8)} ${pad('cores', 6)}`,
    ...figures.levels.map((l) => `${pad(l.concurrency, 7)} ${pad(l.throughput.toFixed(1), 9)} ${pad(l.p50Ms.toFixed(2), 8)} ${pad(l.p99Ms.toFixed(2), 8)} ${pad(l.cpuCores.toFixed(2), 6)}`),
    '',
    `peak resident memory: ${figures.peakRssMiB.toFixed(0)} MiB`,
    '',
    `recommended createOptions: ${JSON.stringify({ HostConfig: { Memory: advice.memoryBytes, NanoCpus: advice.nanoCpus } })}`,
    `  Memory ${advice.memoryBytes}: ${advice.why.memory}`,
    `  NanoCpus ${advice.nanoCpus}: ${advice.why.nanoCpus}`,
    `recommended threads (slot "threads" or EDGE_INFER_THREADS): ${advice.threads}`,
    `  ${advice.why.threads}`,
  ];
}
