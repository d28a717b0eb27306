/**
 * Request rate and mean latency per model over the last minutes, for the status page's chart. Sampled every
 * `intervalMs` from the request-latency histogram that `/metrics` serves (edge_infer_request_duration_seconds:
 * REST and OIP scoring requests, labelled only for slots that exist) as the change in its count and sum since the
 * sample before: nothing is counted twice on the request path.
 */
import { EventEmitter } from 'node:events';
import type { Metrics } from './metrics.js';

export const SAMPLE_MS = 5000;
/** Five minutes at the default interval. */
export const SAMPLES = 60;

export interface RateSample {
  at: string;
  /** Per model with requests so far: requests a second over the interval, and their mean latency (null: none). */
  models: Record<string, { perSecond: number; meanMs: number | null }>;
}

export interface RateSeries {
  intervalMs: number;
  /** How many samples are kept: the chart's width. */
  slots: number;
  /** Oldest first, at most `slots`. */
  samples: RateSample[];
}

export class RequestRates extends EventEmitter<{ sample: [] }> {
  readonly #metrics: Metrics;
  readonly #intervalMs: number;
  readonly #samples: RateSample[] = [];
  /** The histogram's count and sum (seconds) per model at the last sample. */
  #last = new Map<string, { count: number; sum: number }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(metrics: Metrics, intervalMs = SAMPLE_MS) {
    super();
    this.#metrics = metrics;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    void this.#totals().then((totals) => (this.#last = totals));
    this.#timer = setInterval(() => void this.#sample(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  series(): RateSeries {
    return { intervalMs: this.#intervalMs, slots: SAMPLES, samples: [...this.#samples] };
  }

  async #sample(): Promise<void> {
    const totals = await this.#totals();
    const models: RateSample['models'] = {};
    for (const [model, now] of totals) {
      const before = this.#last.get(model) ?? { count: 0, sum: 0 };
      const count = now.count - before.count;
      const sum = now.sum - before.sum;
      models[model] = { perSecond: Math.round((count / this.#intervalMs) * 1e5) / 100, meanMs: count > 0 ? Math.round((sum / count) * 1e4) / 10 : null };
    }
    this.#last = totals;
    this.#samples.push({ at: new Date().toISOString(), models });
    if (this.#samples.length > SAMPLES) this.#samples.shift();
    this.emit('sample');
  }

  /** The histogram's count and sum per model, over its routes. */
  async #totals(): Promise<Map<string, { count: number; sum: number }>> {
    const totals = new Map<string, { count: number; sum: number }>();
    for (const { metricName, labels, value } of (await this.#metrics.requestSeconds.get()).values) {
      const field = metricName?.endsWith('_count') ? 'count' : metricName?.endsWith('_sum') ? 'sum' : undefined;
      if (!field) continue;
      const model = String(labels.model);
      const total = totals.get(model) ?? { count: 0, sum: 0 };
      total[field] += value;
      totals.set(model, total);
    }
    return totals;
  }
}
