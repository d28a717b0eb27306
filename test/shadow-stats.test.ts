import test from 'ava';
import type { Comparison } from '../src/models/agreement.js';
import type { AutoPromote } from '../src/config/desired-state.js';
import { judge } from '../src/models/auto-promote.js';
import { LATENCY_WINDOW, ShadowStats, type ShadowSnapshot } from '../src/models/shadow-stats.js';

const top1 = (agree: boolean): Comparison => ({ kind: 'top1', agree });
const boxes = (active: number, candidate: number, matched: number): Comparison => ({
  kind: 'detection',
  agree: matched === active && matched === candidate,
  boxes: { active, candidate, matched },
});

test('before the first sample: nothing to say, and null rather than zero', (t) => {
  t.deepEqual(new ShadowStats().snapshot(), {
    samples: 0,
    agreed: 0,
    agreement: null,
    kind: null,
    detection: null,
    maxAbsDiff: null,
    latencyMs: { active: null, candidate: null },
    errors: 0,
    dropped: 0,
    lastError: null,
  });
});

test('counts samples, agreement to 4 decimals, the last kind, failures and drops apart from samples', (t) => {
  const stats = new ShadowStats();
  for (let i = 0; i < 3; i++) stats.record(top1(i !== 1), 2, 3);
  stats.failed({ code: 'EI_INFERENCE_FAILED', message: 'first' });
  stats.failed({ code: 'EI_SCRIPT_TIMEOUT', message: 'second' });
  stats.dropped();
  stats.dropped();
  stats.dropped();
  const snapshot = stats.snapshot();
  t.is(snapshot.samples, 3);
  t.is(snapshot.agreed, 2);
  t.is(snapshot.agreement, 0.6667);
  t.is(snapshot.kind, 'top1');
  t.is(snapshot.errors, 2);
  t.is(snapshot.dropped, 3);
  t.deepEqual(snapshot.lastError, { code: 'EI_SCRIPT_TIMEOUT', message: 'second' });
  t.is(snapshot.detection, null);
  stats.record({ kind: 'exact', agree: true }, 1, 1);
  t.is(stats.snapshot().kind, 'exact');
  t.is(stats.snapshot().agreement, 0.75);
});

test('detection precision and recall are summed over boxes, not averaged over samples', (t) => {
  const stats = new ShadowStats();
  stats.record(boxes(3, 2, 2), 1, 1); // the candidate missed one face
  stats.record(boxes(1, 2, 1), 1, 1); // the candidate found an extra one
  stats.record(boxes(0, 0, 0), 1, 1);
  // precision: 3 matched of 4 candidate boxes; recall: 3 matched of 4 active boxes.
  t.deepEqual(stats.snapshot().detection, { precision: 0.75, recall: 0.75 });
  stats.record(boxes(5, 0, 0), 1, 1);
  t.deepEqual(stats.snapshot().detection, { precision: 0.75, recall: 0.3333 });
  t.is(stats.snapshot().agreement, 0.25);

  const empty = new ShadowStats();
  empty.record(boxes(0, 0, 0), 1, 1);
  t.deepEqual(empty.snapshot().detection, { precision: null, recall: null });
});

test('maxAbsDiff is the largest finite difference; shape mismatches count as disagreement only', (t) => {
  const stats = new ShadowStats();
  stats.record({ kind: 'tensors', agree: true, maxAbsDiff: 0.001 }, 1, 1);
  stats.record({ kind: 'tensors', agree: false, maxAbsDiff: 0.25 }, 1, 1);
  stats.record({ kind: 'tensors', agree: true, maxAbsDiff: 0.01 }, 1, 1);
  t.is(stats.snapshot().maxAbsDiff, 0.25);
  stats.record({ kind: 'tensors', agree: false, maxAbsDiff: Infinity }, 1, 1);
  t.is(stats.snapshot().maxAbsDiff, 0.25);
  t.is(stats.snapshot().agreement, 0.5);
  // A twin carries the snapshot as JSON: every number in it must survive.
  t.deepEqual(JSON.parse(JSON.stringify(stats.snapshot())), stats.snapshot());

  const shapesOnly = new ShadowStats();
  shapesOnly.record({ kind: 'tensors', agree: false, maxAbsDiff: Infinity }, 1, 1);
  t.is(shapesOnly.snapshot().maxAbsDiff, null);
});

test('latency percentiles by nearest rank, to 0.1 ms', (t) => {
  const stats = new ShadowStats();
  // Active 1..100 ms, candidate twice as slow, recorded out of order.
  for (let i = 100; i >= 1; i--) stats.record(top1(true), i, 2 * i + 0.04);
  const { active, candidate } = stats.snapshot().latencyMs;
  t.deepEqual(active, { p50: 50, p99: 99 });
  t.deepEqual(candidate, { p50: 100, p99: 198 });

  const one = new ShadowStats();
  one.record(top1(true), 12.345, 0.06);
  t.deepEqual(one.snapshot().latencyMs, { active: { p50: 12.3, p99: 12.3 }, candidate: { p50: 0.1, p99: 0.1 } });
});

test(`latency covers the last ${LATENCY_WINDOW} samples: older ones leave the window, counts do not`, (t) => {
  const stats = new ShadowStats();
  // 1000 slow samples, then 600 fast ones: the window holds 400 slow and 600 fast.
  for (let i = 0; i < LATENCY_WINDOW; i++) stats.record(top1(true), 500, 900);
  for (let i = 0; i < 600; i++) stats.record(top1(false), 5, 9);
  let snapshot = stats.snapshot();
  t.is(snapshot.samples, LATENCY_WINDOW + 600);
  t.is(snapshot.agreed, LATENCY_WINDOW);
  t.deepEqual(snapshot.latencyMs, { active: { p50: 5, p99: 500 }, candidate: { p50: 9, p99: 900 } });
  // 400 more fast ones push the last slow sample out.
  for (let i = 0; i < 400; i++) stats.record(top1(true), 5, 9);
  snapshot = stats.snapshot();
  t.deepEqual(snapshot.latencyMs, { active: { p50: 5, p99: 5 }, candidate: { p50: 9, p99: 9 } });
  // p99 of 1000 is the 990th value: one slow sample in the window lies above it, eleven reach it.
  stats.record(top1(true), 700, 700);
  t.is(stats.snapshot().latencyMs.active!.p99, 5);
  for (let i = 0; i < 10; i++) stats.record(top1(true), 700, 700);
  t.is(stats.snapshot().latencyMs.active!.p99, 700);
});

// ---- judge ----

function snapshotOf(samples: number, agreed: number, activeP50 = 10, candidateP50 = 10): ShadowSnapshot {
  const stats = new ShadowStats();
  for (let i = 0; i < samples; i++) stats.record(top1(i < agreed), activeP50, candidateP50);
  return stats.snapshot();
}

const rule: AutoPromote = { minAgreement: 0.95, minSamples: 200 };

test('judge: no verdict before minSamples; at exactly minSamples it judges', (t) => {
  t.is(judge(rule, snapshotOf(199, 199)), undefined);
  t.deepEqual(judge(rule, snapshotOf(200, 200)), { promote: true, reason: 'agreement 1 ≥ 0.95 after 200 samples' });
  t.is(judge({ minAgreement: 0.5, minSamples: 0 }, snapshotOf(0, 0)), undefined);
  t.deepEqual(judge({ minAgreement: 0.5, minSamples: 0 }, snapshotOf(1, 1)), { promote: true, reason: 'agreement 1 ≥ 0.5 after 1 sample' });
});

test('judge: agreement exactly minAgreement promotes; one sample less refuses with the reason', (t) => {
  t.deepEqual(judge(rule, snapshotOf(200, 190)), { promote: true, reason: 'agreement 0.95 ≥ 0.95 after 200 samples' });
  t.deepEqual(judge(rule, snapshotOf(200, 189)), { promote: false, reason: 'agreement 0.945 is below minAgreement 0.95 after 200 samples' });
  t.deepEqual(judge(rule, snapshotOf(211, 171)), { promote: false, reason: 'agreement 0.8104 is below minAgreement 0.95 after 211 samples' });
});

test('judge: an agreement that rounds to the threshold is shown in full, not as "0.95 is below 0.95"', (t) => {
  // 18999 of 20000 is 0.94995: to 4 decimals it would read 0.95 (0.9500), yet it is below.
  const verdict = judge({ minAgreement: 0.95, minSamples: 100 }, { ...snapshotOf(1, 1), samples: 20000, agreed: 18999 });
  t.deepEqual(verdict, { promote: false, reason: 'agreement 0.94995 is below minAgreement 0.95 after 20000 samples' });
});

test('judge: the p50 latency ratio, at the limit and over it', (t) => {
  const latency = { ...rule, maxLatencyRatio: 1.5 };
  t.deepEqual(judge(latency, snapshotOf(200, 198, 10, 15)), {
    promote: true,
    reason: 'agreement 0.99 ≥ 0.95 and p50 latency 1.5x ≤ 1.5x after 200 samples',
  });
  t.deepEqual(judge(latency, snapshotOf(200, 198, 10, 10.8)), {
    promote: true,
    reason: 'agreement 0.99 ≥ 0.95 and p50 latency 1.08x ≤ 1.5x after 200 samples',
  });
  t.deepEqual(judge(latency, snapshotOf(200, 198, 10, 16.2)), {
    promote: false,
    reason: 'p50 latency 1.62x (16.2 ms against 10 ms) is above maxLatencyRatio 1.5x, though agreement 0.99 ≥ 0.95, after 200 samples',
  });
  // Agreement is judged first: a fast candidate that disagrees is refused for its agreement.
  t.false(judge(latency, snapshotOf(200, 10, 10, 1))!.promote);
  t.regex(judge(latency, snapshotOf(200, 10, 10, 1))!.reason, /^agreement 0.05 is below/);
  // Under the 0.1 ms the snapshot resolves, both versions count as 0.1 ms: no division by zero.
  t.deepEqual(judge(latency, snapshotOf(200, 200, 0.02, 0.04))?.promote, true);
  t.false(judge(latency, snapshotOf(200, 200, 0.02, 0.3))!.promote);
});
