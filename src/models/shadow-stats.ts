/**
 * Running statistics of one candidate version against the active version, since the candidate was loaded: what
 * `/status`, the reported properties and the autoPromote rule read. Recording is a few additions and one store
 * in a ring; the sorting for percentiles happens only when a snapshot is taken.
 */
import type { Comparison, ComparisonKind } from './agreement.js';

/** ms, over the last LATENCY_WINDOW samples. */
export interface LatencySummary {
  p50: number;
  p99: number;
}

export interface ShadowSnapshot {
  /** compared inputs */
  samples: number;
  agreed: number;
  /** agreed / samples, null before the first sample */
  agreement: number | null;
  /** of the last comparison */
  kind: ComparisonKind | null;
  /** summed over samples: matched/candidate boxes, matched/active boxes (only once a detection was compared) */
  detection: { precision: number | null; recall: number | null } | null;
  /**
   * The largest finite difference seen (tensors only). Outputs of another shape, dtype or name (an infinite
   * difference) are disagreements and show in `agreement`: a twin cannot carry Infinity.
   */
  maxAbsDiff: number | null;
  latencyMs: { active: LatencySummary | null; candidate: LatencySummary | null };
  /** shadow runs that failed on the candidate (the active had answered) */
  errors: number;
  /** shadow inputs dropped (load, queue full) */
  dropped: number;
  lastError: { code: string; message: string } | null;
}

/** Latency percentiles cover the most recent samples, so that they follow a candidate that warms up or slows down. */
export const LATENCY_WINDOW = 1000;

export class ShadowStats {
  #samples = 0;
  #agreed = 0;
  #kind: ComparisonKind | null = null;
  #boxes: { active: number; candidate: number; matched: number } | null = null;
  #maxAbsDiff: number | null = null;
  #errors = 0;
  #dropped = 0;
  #lastError: { code: string; message: string } | null = null;
  readonly #activeMs = new LatencyWindow(LATENCY_WINDOW);
  readonly #candidateMs = new LatencyWindow(LATENCY_WINDOW);

  record(comparison: Comparison, activeMs: number, candidateMs: number): void {
    this.#samples++;
    if (comparison.agree) this.#agreed++;
    this.#kind = comparison.kind;
    const { boxes, maxAbsDiff } = comparison;
    if (boxes) {
      this.#boxes ??= { active: 0, candidate: 0, matched: 0 };
      this.#boxes.active += boxes.active;
      this.#boxes.candidate += boxes.candidate;
      this.#boxes.matched += boxes.matched;
    }
    if (maxAbsDiff !== undefined && Number.isFinite(maxAbsDiff)) this.#maxAbsDiff = Math.max(this.#maxAbsDiff ?? 0, maxAbsDiff);
    this.#activeMs.add(activeMs);
    this.#candidateMs.add(candidateMs);
  }

  failed(error: { code: string; message: string }): void {
    this.#errors++;
    this.#lastError = { code: error.code, message: error.message };
  }

  dropped(): void {
    this.#dropped++;
  }

  snapshot(): ShadowSnapshot {
    const boxes = this.#boxes;
    return {
      samples: this.#samples,
      agreed: this.#agreed,
      agreement: this.#samples > 0 ? round(this.#agreed / this.#samples, 4) : null,
      kind: this.#kind,
      detection: boxes && {
        precision: boxes.candidate > 0 ? round(boxes.matched / boxes.candidate, 4) : null,
        recall: boxes.active > 0 ? round(boxes.matched / boxes.active, 4) : null,
      },
      maxAbsDiff: this.#maxAbsDiff,
      latencyMs: { active: this.#activeMs.summary(), candidate: this.#candidateMs.summary() },
      errors: this.#errors,
      dropped: this.#dropped,
      lastError: this.#lastError,
    };
  }
}

/** The last `capacity` values, oldest overwritten first. */
class LatencyWindow {
  readonly #values: Float64Array;
  #count = 0;
  #next = 0;

  constructor(capacity: number) {
    this.#values = new Float64Array(capacity);
  }

  add(value: number): void {
    this.#values[this.#next] = value;
    this.#next = (this.#next + 1) % this.#values.length;
    this.#count = Math.min(this.#count + 1, this.#values.length);
  }

  /** Nearest-rank percentiles, to 0.1 ms; null before the first value. */
  summary(): LatencySummary | null {
    if (this.#count === 0) return null;
    const sorted = this.#values.slice(0, this.#count).sort();
    const rank = (q: number) => round(sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!, 1);
    return { p50: rank(0.5), p99: rank(0.99) };
  }
}

function round(value: number, decimals: number): number {
  const scale = 10 ** decimals;
  return Math.round(value * scale) / scale;
}
