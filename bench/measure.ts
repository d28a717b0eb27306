/** Latency and throughput measurements shared by every benchmark row. */
import http from 'node:http';
import autocannon from 'autocannon';

export interface Latency {
  p50: number;
  p99: number;
  /** Operations per second of the sequential loop. */
  rate: number;
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `operation` one at a time for `seconds`, after `warmup` runs; milliseconds. */
export async function sequentialLatency(operation: () => Promise<unknown>, seconds: number, warmup = 20): Promise<Latency> {
  for (let i = 0; i < warmup; i++) await operation();
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  while (performance.now() < end) {
    const t0 = performance.now();
    await operation();
    times.push(performance.now() - t0);
  }
  const elapsed = (performance.now() - start) / 1000;
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), rate: times.length / elapsed };
}

/**
 * p50 of two pieces of work run alternately, one request each in turn, so that whatever else loads the machine
 * falls on both alike: the ratio a goal is about.
 */
export async function pairedP50(a: () => Promise<unknown>, b: () => Promise<unknown>, seconds: number, warmup = 20): Promise<[number, number]> {
  for (let i = 0; i < warmup; i++) {
    await a();
    await b();
  }
  const times: [number[], number[]] = [[], []];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    for (const [i, work] of [a, b].entries()) {
      const t0 = performance.now();
      await work();
      times[i]!.push(performance.now() - t0);
    }
  }
  const p50 = (list: number[]) => list.sort((x, y) => x - y)[Math.floor(list.length / 2)]!;
  return [p50(times[0]), p50(times[1])];
}

/** Keeps `concurrency` operations in flight for `seconds`; operations per second. */
export async function concurrentRate(operation: () => Promise<unknown>, concurrency: number, seconds: number): Promise<number> {
  let done = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await operation();
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

export interface HttpCall {
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** One POST over a kept-alive connection; rejects unless the answer is 200. */
export function post(call: HttpCall): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.request(call.url, { method: 'POST', agent, headers: { ...call.headers, 'content-length': call.body.length } }, (response) => {
      response.resume();
      response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`${call.url} answered ${response.statusCode}`))));
    });
    request.on('error', reject);
    request.end(call.body);
  });
}

/** Requests per second at `connections` clients, with autocannon; fails the bench on any non-2xx. */
export async function httpRate(call: HttpCall, connections: number, seconds: number): Promise<number> {
  const result = await autocannon({ url: call.url, method: 'POST', headers: call.headers, body: call.body, connections, duration: seconds });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${call.url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return result.requests.total / (result.duration || seconds);
}

/**
 * Requests per second of two calls at `connections` clients, measured in alternating slices of `slice` seconds
 * until each has had `seconds`: like pairedP50, it spreads the machine's other load over both alike.
 */
export async function pairedHttpRate(a: HttpCall, b: HttpCall, connections: number, seconds: number, slice = 1): Promise<[number, number]> {
  const rates: [number[], number[]] = [[], []];
  for (let done = 0; done < seconds; done += slice) {
    for (const [i, call] of [a, b].entries()) rates[i]!.push(await httpRate(call, connections, slice));
  }
  const mean = (list: number[]) => list.reduce((sum, x) => sum + x, 0) / list.length;
  return [mean(rates[0]), mean(rates[1])];
}
