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
 * Which of `count` takers goes where in turn number `turn`: a rotation, so that over the turns each takes each
 * place as often as the others, and whatever the one before leaves behind (its sockets closing, a collection)
 * falls on all alike rather than always on the same neighbour.
 */
function turnOrder(count: number, turn: number): number[] {
  return Array.from({ length: count }, (_, place) => (place + turn) % count);
}

/**
 * p50 of pieces of work run in turns, one request each, so that whatever else loads the machine falls on all
 * alike: the ratios a goal is about. One p50 per piece of work, in the order given.
 */
export async function p50TakingTurns(works: Array<() => Promise<unknown>>, seconds: number, warmup = 20): Promise<number[]> {
  for (let i = 0; i < warmup; i++) {
    for (const work of works) await work();
  }
  const times: number[][] = works.map(() => []);
  const end = performance.now() + seconds * 1000;
  for (let turn = 0; performance.now() < end; turn++) {
    for (const i of turnOrder(works.length, turn)) {
      const t0 = performance.now();
      await works[i]!();
      times[i]!.push(performance.now() - t0);
    }
  }
  return times.map((list) => list.sort((x, y) => x - y)[Math.floor(list.length / 2)]!);
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
 * Requests per second of calls at `connections` clients, measured in slices of `slice` seconds taken in turns
 * until each has had `seconds`: like p50TakingTurns, it spreads the machine's other load over all alike. Each
 * call's rate is the mean of its slices, in the order given.
 */
export async function ratesTakingTurns(calls: HttpCall[], connections: number, seconds: number, slice = 1): Promise<number[]> {
  const rates: number[][] = calls.map(() => []);
  for (let turn = 0; turn * slice < seconds; turn++) {
    for (const i of turnOrder(calls.length, turn)) rates[i]!.push(await httpRate(calls[i]!, connections, slice));
  }
  return rates.map((list) => list.reduce((sum, x) => sum + x, 0) / list.length);
}
