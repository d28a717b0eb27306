/**
 * Measures one piece of work at rising concurrency: per level, requests answered, latency percentiles and the
 * CPU the process used. What `edge-infer profile` reports and bases its recommendations on.
 */

/** The value below which a share `p` (0..1) of the sorted values lie. */
const percentileOf = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;

export interface LevelFigures {
  concurrency: number;
  requests: number;
  /** Requests per second over the level's wall time. */
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU seconds used per wall second: 1.5 means one and a half cores busy on average. */
  cpuCores: number;
}

/** 1, 2, 4, ... up to `most`, which is always included. */
export function concurrencyLevels(most: number): number[] {
  const levels: number[] = [];
  for (let level = 1; level < most; level *= 2) levels.push(level);
  levels.push(most);
  return levels;
}

export async function measureLevel(work: () => Promise<unknown>, concurrency: number, seconds: number): Promise<LevelFigures> {
  const latencies: number[] = [];
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const client = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await work();
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    requests: latencies.length,
    throughput: latencies.length / wallSeconds,
    p50Ms: percentileOf(latencies, 0.5),
    p99Ms: percentileOf(latencies, 0.99),
    cpuCores: (cpu.user + cpu.system) / 1e6 / wallSeconds,
  };
}
