/**
 * Admission by expected wait (models/admission.ts, `--max-queue-wait`): past the budget a request is refused at
 * once however few wait, so accepted requests stay near the unloaded latency under sustained overload, where a
 * long queue of 32 made the accepted p99 14x the unloaded one (bench/admission.ts).
 */
import test from 'ava';
import { Admission } from '../src/models/admission.js';

const work = (ms: number) => () => new Promise<string>((resolve) => setTimeout(() => resolve('done'), ms));

/** Offers `count` requests at once; how many were refused at once and how many waited and ran. */
async function crowd(admission: Admission, count: number, ms: number): Promise<{ refused: number; ran: number; mostWaiting: number }> {
  let mostWaiting = 0;
  const outcomes = await Promise.allSettled(
    Array.from({ length: count }, () => {
      const running = admission.run(work(ms));
      mostWaiting = Math.max(mostWaiting, admission.counts().waiting);
      return running;
    }),
  );
  const refused = outcomes.filter((o) => o.status === 'rejected' && (o.reason as { code?: string }).code === 'EI_OVERLOADED').length;
  return { refused, ran: outcomes.filter((o) => o.status === 'fulfilled').length, mostWaiting };
}

test('a budget in milliseconds: requests that would wait past it are refused at once, well before the waiting count', async (t) => {
  const admission = new Admission({ inFlight: 1, waiting: 100, maxQueueWait: 500 });
  await admission.run(work(50));
  const { refused, ran, mostWaiting } = await crowd(admission, 60, 50);
  // Each waits about 50 ms more than the one before: about ten fit in 500 ms, never the 100 the count allows.
  t.true(mostWaiting >= 3 && mostWaiting <= 10, `${mostWaiting} waited`);
  t.is(refused + ran, 60);
  t.is(admission.counts().shed, refused);
});

test('auto: the budget is the fastest recent service time, so about one turn of waiting per place', async (t) => {
  const admission = new Admission({ inFlight: 2, waiting: 64, maxQueueWait: 'auto' });
  await Promise.all([admission.run(work(40)), admission.run(work(40))]);
  const { refused, mostWaiting } = await crowd(admission, 40, 40);
  t.true(mostWaiting <= 2, `${mostWaiting} waited`);
  t.true(refused >= 30, `${refused} refused`);
});

test('without a budget the count alone bounds waiting, as before', async (t) => {
  const admission = new Admission({ inFlight: 1, waiting: 8 });
  await admission.run(work(20));
  const { refused, mostWaiting } = await crowd(admission, 20, 20);
  t.is(mostWaiting, 8);
  t.is(refused, 11);
});
