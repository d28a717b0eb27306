/**
 * Admission (models/admission.ts) through the real service and the bundled model: a crowd against a small
 * bound is answered at once with 503 + Retry-After while every accepted request succeeds in bounded time, and
 * requests whose clients went away while they waited are never scored; a camera's frames meet the same bound.
 */
import test from 'ava';
import { photo, postImage } from './support/fixtures.js';
import { startHttpCamera } from './support/http-camera.js';
import { startService, type TestService } from './support/service.js';
import { until } from './support/until.js';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The value of the first /metrics series that starts with `series` (0 when there is none yet). */
async function metric(service: TestService, series: string): Promise<number> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(series));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Inferences run so far on the face model. */
const inferences = (service: TestService) => metric(service, 'edge_infer_inference_duration_seconds_count{model="face"');

test.serial('256 clients against a bound of 2 in flight and 4 waiting: the rest get 503 with Retry-After at once, every accepted request succeeds in bounded time', async (t) => {
  const service = await startService({ args: ['--max-in-flight', '2', '--max-waiting', '4'] });
  t.teardown(() => service.close());
  const image = await photo(1);
  const unloaded: number[] = [];
  for (let i = 0; i < 30; i++) {
    const started = performance.now();
    const response = await postImage(`${service.url}/score`, image);
    t.is(response.status, 200, await response.clone().text());
    await response.arrayBuffer();
    unloaded.push(performance.now() - started);
  }
  const unloadedP99 = percentile(unloaded.sort((a, b) => a - b), 99);

  // Timed from the request's arrival at the service (the server's 'request' event, matched by request id) to its
  // answer. The 256 clients share this process's event loop with the service, and some of the first burst reach
  // the server only 1-4 s after they started (their connections are accepted late, before the service has
  // them); timed from the client's start, the few of those accepted (more, the faster the turns) ruled the p90.
  const arrivals = new Map<string, number>();
  const arrived = (request: { headers: Record<string, unknown> }) => arrivals.set(String(request.headers['x-request-id']), performance.now());
  service.app.server.on('request', arrived);
  t.teardown(() => service.app.server.off('request', arrived));
  const accepted: number[] = [];
  const refused: Array<{ retryAfter: string | null; code: string }> = [];
  const other: number[] = [];
  let sent = 0;
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      for (let round = 0; round < 3; round++) {
        const id = `crowd-${sent++}`;
        const response = await postImage(`${service.url}/score`, image, 'image/jpeg', { 'x-request-id': id });
        const body = (await response.json()) as { error?: { code: string } };
        if (response.status === 200) accepted.push(performance.now() - arrivals.get(id)!);
        else if (response.status === 503) refused.push({ retryAfter: response.headers.get('retry-after'), code: body.error!.code });
        else other.push(response.status);
      }
    }),
  );
  t.deepEqual(other, [], 'every answer is a success or a refusal');
  t.true(accepted.length >= 6, `${accepted.length} accepted`);
  t.true(refused.length > 0, 'past the bound, requests are refused');
  for (const r of refused) t.deepEqual(r, { retryAfter: '1', code: 'EI_OVERLOADED' });
  accepted.sort((a, b) => a - b);
  const acceptedP90 = percentile(accepted, 90);
  const acceptedP99 = percentile(accepted, 99);
  t.log(`unloaded p99 ${unloadedP99.toFixed(1)} ms; under 256 clients: ${accepted.length} accepted (from arrival: p90 ${acceptedP90.toFixed(1)} ms, p99 ${acceptedP99.toFixed(1)} ms), ${refused.length} refused`);
  // Generous: a bounded queue keeps an accepted request within a few inferences (in ten runs here its p99 came
  // to 1.3-2.7x the unloaded p99); an unbounded one took seconds for most requests. bench/admission.ts measures it from the
  // clients' side, with the service in a process of its own.
  t.true(acceptedP99 < 10 * unloadedP99, `accepted p99 ${acceptedP99.toFixed(1)} ms, unloaded p99 ${unloadedP99.toFixed(1)} ms`);
  const counts = service.registry.admissionCounts().get('face')!;
  t.is(counts.shed, refused.length);
  t.deepEqual([counts.inFlight, counts.waiting], [0, 0]);
});

test.serial('300 requests whose clients disconnect while they wait are not scored, and are counted', async (t) => {
  const service = await startService({ args: ['--max-in-flight', '1', '--max-waiting', '400'] });
  t.teardown(() => service.close());
  const image = await photo(1);
  const before = await inferences(service);
  const clients = Array.from({ length: 300 }, () => new AbortController());
  const requests = clients.map((client) =>
    fetch(`${service.url}/score`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: new Uint8Array(image), signal: client.signal }).catch(() => 'aborted'),
  );
  const counts = () => service.registry.admissionCounts().get('face')!;
  // All 300 have arrived: each is scored, being scored, or waiting.
  await until(async () => counts().waiting + counts().inFlight + (await inferences(service)) - before >= 300, 'all 300 requests arrive');
  const scoredAtAbort = (await inferences(service)) - before + counts().inFlight;
  const waitingAtAbort = counts().waiting;
  for (const client of clients) client.abort();
  await Promise.all(requests);
  await until(() => counts().waiting === 0 && counts().inFlight === 0, 'the queue empties');
  const scored = (await inferences(service)) - before;
  t.log(`${waitingAtAbort} waiting when the clients left; ${scoredAtAbort} scored or being scored then, ${scored} in the end`);
  t.true(waitingAtAbort >= 100, `${waitingAtAbort} waited`);
  // A turn may come to one or two before their socket's close is seen; the rest are never scored.
  t.true(scored - scoredAtAbort <= 3, `${scored - scoredAtAbort} scored after their clients left`);
  t.is(counts().abandoned, 300 - scored);
  const next = performance.now();
  const response = await postImage(`${service.url}/score`, image);
  t.is(response.status, 200);
  t.log(`the next request took ${(performance.now() - next).toFixed(0)} ms`);
});

test.serial('a camera goes through the same admission: while REST requests hold the model, its frames are dropped, never failed', async (t) => {
  const service = await startService({ args: ['--max-in-flight', '1', '--max-waiting', '0'] });
  const camera = await startHttpCamera({ jpeg: await photo(2), fps: 10 });
  t.teardown(async () => {
    service.cameras.apply({}, {});
    await camera.close();
    await service.close();
  });
  service.cameras.apply({ door: { uri: camera.url('/mjpeg'), fps: 10 } }, {});
  await until(() => service.status.snapshot().cameras.door?.status === 'streaming', 'the camera streams');
  const image = await photo(1);
  let refusedRest = 0;
  const end = performance.now() + 3000;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (performance.now() < end) {
        const response = await postImage(`${service.url}/score`, image);
        await response.arrayBuffer();
        if (response.status === 503) refusedRest++;
      }
    }),
  );
  const frames = (outcome: string) => metric(service, `edge_infer_camera_frames_total{camera="door",outcome="${outcome}"}`);
  const [scored, dropped, failed] = [await frames('scored'), await frames('dropped'), await frames('failed')];
  const shed = service.registry.admissionCounts().get('face')!.shed;
  t.log(`REST refused ${refusedRest}; admission shed ${shed}; frames scored ${scored}, dropped ${dropped}, failed ${failed}`);
  t.true(shed > refusedRest, 'camera frames were refused by the same admission as the REST requests');
  t.true(dropped > 0);
  t.is(failed, 0);
  t.is(service.status.snapshot().cameras.door?.error ?? null, null);
});
