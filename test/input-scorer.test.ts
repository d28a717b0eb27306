/**
 * The input-message scorer on its own, with the real bundled model: back-pressure at its bound, completion only
 * after an answer was sent, and the drain that SIGTERM waits for. The hub side is its two functions, send and complete.
 */
import test from 'ava';
import { EdgeInferError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { InputScorer, type InputMessage } from '../src/hub/messages.js';
import type { OutputMessage } from '../src/sources/result-message.js';
import { photo, postImage } from './support/fixtures.js';
import { startService, type TestService } from './support/service.js';

let service: TestService;
test.before(async () => {
  // A small bound, so that six messages at once overflow it: one scored at a time, two waiting.
  service = await startService({ args: ['--max-in-flight', '1', '--max-waiting', '2'] });
});
test.after.always(() => service?.close());

/** A scorer on the test service's face model; `options` replaces what a test is about. */
function scorer(options: Partial<ConstructorParameters<typeof InputScorer>[0]>): InputScorer {
  return new InputScorer({
    registry: service.registry,
    defaultModel: () => 'face',
    outputName: () => 'results',
    send: async () => undefined,
    complete: async () => undefined,
    log: createLogger('silent'),
    ...options,
  });
}

function message(id: string, data: Buffer, properties: Record<string, string> = {}): InputMessage {
  return { data, messageId: id, contentType: 'image/jpeg', properties: { getValue: (key) => properties[key] } };
}

test.serial("past the model's admission bound, a message is answered on errors with EI_OVERLOADED, and every message is completed once answered", async (t) => {
  const sent: OutputMessage[] = [];
  const completed: string[] = [];
  const shedBefore = service.registry.admissionCounts().get('face')!.shed;
  const bounded = scorer({ send: async (m) => void sent.push(m), complete: async (m) => void completed.push(m.messageId!) });
  const image = await photo(1);
  for (let i = 0; i < 6; i++) bounded.take('score', message(`m${i}`, image));
  await bounded.drain();
  const byOutput = (output: string) => sent.filter((m) => m.output === output).map((m) => m.correlationId).sort();
  // One is scored at once and two may wait: the first three are scored, the other three refused at the bound.
  t.deepEqual(byOutput('results'), ['m0', 'm1', 'm2']);
  t.deepEqual(byOutput('errors'), ['m3', 'm4', 'm5']);
  for (const refused of sent.filter((m) => m.output === 'errors')) t.is((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'EI_OVERLOADED');
  t.deepEqual([...completed].sort(), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
  // The same admission as REST and cameras: its count of refusals is the one /metrics shows.
  t.is(service.registry.admissionCounts().get('face')!.shed - shedBefore, 3);
});

test.serial('messages and REST requests share one bound: while messages fill it, /score answers 503 with Retry-After', async (t) => {
  const sent: OutputMessage[] = [];
  const shared = scorer({ send: async (m) => void sent.push(m) });
  const image = await photo(1);
  // Messages keep coming, so the model's one turn and its two waiting places stay taken while the request arrives.
  let taken = 0;
  for (; taken < 3; taken++) shared.take('score', message(`s${taken}`, image));
  const feed = setInterval(() => shared.take('score', message(`s${taken++}`, image)), 1);
  const response = await postImage(`${service.url}/score`, image).finally(() => clearInterval(feed));
  t.is(response.status, 503);
  t.is(response.headers.get('retry-after'), '1');
  t.is(((await response.json()) as { error: { code: string } }).error.code, 'EI_OVERLOADED');
  await shared.drain();
});

test.serial('a message whose answer the outbox gave up (its bound, or a stop) is not completed', async (t) => {
  const completed: string[] = [];
  const unlinked = scorer({
    send: async () => {
      throw new EdgeInferError('EI_OUTPUT_NOT_SENT', ['the module stopped before the link to edgeHub was back']);
    },
    complete: async (m) => void completed.push(m.messageId!),
  });
  unlinked.take('score', message('lost-link', await photo(1)));
  await unlinked.drain();
  t.deepEqual(completed, []);
});

test.serial('after drain() begins, new messages are neither scored nor completed', async (t) => {
  const sent: OutputMessage[] = [];
  const draining = scorer({ send: async (m) => void sent.push(m) });
  const image = await photo(1);
  draining.take('score', message('accepted', image));
  const drained = draining.drain();
  draining.take('score', message('too-late', image));
  await drained;
  t.deepEqual(sent.map((m) => m.correlationId), ['accepted']);
});
