/**
 * The autoPromote rule: whether a candidate's running statistics are good enough to make it the active version,
 * with the reason a person reads in the reported properties either way.
 */
import type { AutoPromote } from '../config/desired-state.js';
import type { ShadowSnapshot } from './shadow-stats.js';

/** Latencies are reported to 0.1 ms: below that the two versions cannot be told apart, so neither counts as less. */
const LATENCY_RESOLUTION_MS = 0.1;

/**
 * undefined while samples < minSamples (or before the first sample); else the verdict with a one-sentence reason,
 * e.g. "agreement 0.8123 is below minAgreement 0.95 after 200 samples". Agreement is agreed / samples, exact.
 */
export function judge(rule: AutoPromote, snapshot: ShadowSnapshot): { promote: boolean; reason: string } | undefined {
  const { samples, agreed } = snapshot;
  if (samples === 0 || samples < rule.minSamples) return undefined;
  const after = `after ${samples} sample${samples === 1 ? '' : 's'}`;
  const agreement = agreed / samples;
  const shownAgreement = shown(agreement, rule.minAgreement, 4);
  if (agreement < rule.minAgreement) {
    return { promote: false, reason: `agreement ${shownAgreement} is below minAgreement ${rule.minAgreement} ${after}` };
  }
  const agreementHolds = `agreement ${shownAgreement} ≥ ${rule.minAgreement}`;
  if (rule.maxLatencyRatio === undefined) return { promote: true, reason: `${agreementHolds} ${after}` };
  const { active, candidate } = snapshot.latencyMs;
  if (!active || !candidate) return undefined;
  const ratio = Math.max(candidate.p50, LATENCY_RESOLUTION_MS) / Math.max(active.p50, LATENCY_RESOLUTION_MS);
  const shownRatio = `${shown(ratio, rule.maxLatencyRatio, 2)}x`;
  if (ratio > rule.maxLatencyRatio) {
    return {
      promote: false,
      reason: `p50 latency ${shownRatio} (${candidate.p50} ms against ${active.p50} ms) is above maxLatencyRatio ${rule.maxLatencyRatio}x, though ${agreementHolds}, ${after}`,
    };
  }
  return { promote: true, reason: `${agreementHolds} and p50 latency ${shownRatio} ≤ ${rule.maxLatencyRatio}x ${after}` };
}

/**
 * The value to `decimals` places, or in full where that rounding would make it read as the threshold it was
 * compared with ("0.95 is below 0.95").
 */
function shown(value: number, threshold: number, decimals: number): string {
  const scale = 10 ** decimals;
  const rounded = Math.round(value * scale) / scale;
  return rounded === threshold && value !== threshold ? String(value) : String(rounded);
}
