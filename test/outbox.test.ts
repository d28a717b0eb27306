/**
 * The outbox's rules on their own (the end-to-end case, through the real SDK and the test edgeHub, is in
 * hub-faults.test.ts): order kept across an outage, the bound drops the oldest and says so, a stop gives up what
 * waits. `deliver` stands for the session of the moment: it fails while "the link is down".
 */
import test from 'ava';
import pino from 'pino';
import { Outbox } from '../src/hub/outbox.js';
import type { OutputMessage } from '../src/sources/result-message.js';

const message = (n: number): OutputMessage => ({ output: 'results', body: String(n), correlationId: undefined, properties: {} });

function rig(limit: number) {
  const sent: string[] = [];
  const dropped: string[] = [];
  const waiting: number[] = [];
  let up = true;
  const outbox = new Outbox({
    deliver: async (m) => {
      if (!up) throw new Error('not connected to IoT Hub');
      sent.push(String(m.body));
    },
    limit,
    log: pino({ level: 'silent' }),
    onWaiting: (n) => waiting.push(n),
    onDropped: (output) => dropped.push(output),
    retryMs: 60_000,
  });
  return { outbox, sent, dropped, waiting, setUp: (value: boolean) => (up = value) };
}

test('messages sent while the link is down go out in order once it is back, and each send resolves then', async (t) => {
  const { outbox, sent, waiting, setUp } = rig(10);
  await outbox.send(message(0));
  setUp(false);
  const pending = [1, 2, 3].map((n) => outbox.send(message(n)));
  await new Promise(setImmediate);
  t.is(outbox.waiting, 3);
  setUp(true);
  // Sent while others wait: it queues behind them rather than overtaking.
  const fourth = outbox.send(message(4));
  await outbox.resume();
  await Promise.all([...pending, fourth]);
  t.deepEqual(sent, ['0', '1', '2', '3', '4']);
  t.is(outbox.waiting, 0);
  t.is(waiting.at(-1), 0);
});

test('past its bound the oldest waiting message is dropped, counted and its sender told', async (t) => {
  const { outbox, sent, dropped, setUp } = rig(2);
  setUp(false);
  const first = outbox.send(message(1));
  const rest = [2, 3].map((n) => outbox.send(message(n)));
  const error = await t.throwsAsync(first);
  t.is((error as { code?: string }).code, 'EI_OUTPUT_NOT_SENT');
  t.deepEqual(dropped, ['results']);
  setUp(true);
  await outbox.resume();
  await Promise.all(rest);
  t.deepEqual(sent, ['2', '3']);
});

test('stopping gives up what waits, and a later send is tried once and not kept', async (t) => {
  const { outbox, dropped, setUp } = rig(10);
  setUp(false);
  const waiting = outbox.send(message(1));
  await new Promise(setImmediate);
  t.is(outbox.waiting, 1);
  outbox.stop();
  await t.throwsAsync(waiting, { message: /module stopped/ });
  await t.throwsAsync(outbox.send(message(2)), { message: /not connected/ });
  t.is(outbox.waiting, 0);
  t.deepEqual(dropped, ['results']);
});
