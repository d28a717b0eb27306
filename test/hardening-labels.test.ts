/**
 * Finding 3 of issue 12: metric series and status counters come only from slots that exist. Request paths
 * naming random slots (404) used to add one series and one counter each: 30,000 made /metrics 61 MB.
 */
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { photo, postImage, postJson } from './support/fixtures.js';
import { bundledFace, startService } from './support/service.js';

test('10,000 requests to random slot names leave /metrics and /status as they were', async (t) => {
  const service = await startService();
  try {
    t.is((await postImage(`${service.url}/models/face/score`, await photo(1))).status, 200);
    const metricsBefore = await (await fetch(`${service.url}/metrics`)).text();
    const names = Array.from({ length: 10_000 }, () => `m${randomBytes(6).toString('hex')}`);
    const paths = [(n: string) => `/models/${n}/score`, (n: string) => `/v2/models/${n}/infer`, (n: string) => `/v2/models/${n}/versions/1/infer`];
    let next = 0;
    const statuses = new Map<number, number>();
    const client = async () => {
      while (next < names.length) {
        const i = next++;
        const response = await postJson(`${service.url}${paths[i % paths.length]!(names[i]!)}`, { data: [1] });
        await response.arrayBuffer();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 32 }, client));
    t.deepEqual([...statuses], [[404, names.length]]);

    const metricsAfter = await (await fetch(`${service.url}/metrics`)).text();
    const series = (text: string) => text.split('\n').filter((line) => line.startsWith('edge_infer_request')).length;
    t.is(series(metricsAfter), series(metricsBefore), 'no request series was added');
    t.false(names.some((name) => metricsAfter.includes(name)), 'no random name is a label value');
    t.true(metricsAfter.length < metricsBefore.length + 4096, `/metrics grew from ${metricsBefore.length} to ${metricsAfter.length} bytes`);
    const status = (await (await fetch(`${service.url}/status`)).json()) as { counters: { requests: Record<string, unknown> } };
    t.deepEqual(Object.keys(status.counters.requests), ['face']);
    // Requests to the slot that exists are still counted.
    t.regex(metricsAfter, /edge_infer_requests_total\{route="\/models\/:name\/score",model="face",code="200"\} 1/);
  } finally {
    await service.close();
  }
});

test('a slot removed from the desired state leaves no series in /metrics and no counters in /status', async (t) => {
  const gone = { ...bundledFace, name: 'gone', version: '1' };
  const service = await startService({ models: [bundledFace, gone] });
  try {
    for (const name of ['face', 'gone']) t.is((await postImage(`${service.url}/models/${name}/score`, await photo(1))).status, 200);
    const before = await (await fetch(`${service.url}/metrics`)).text();
    t.regex(before, /edge_infer_requests_total\{route="\/models\/:name\/score",model="gone",code="200"\} 1/);
    t.regex(before, /edge_infer_inference_duration_seconds_bucket\{le="[^"]+",model="gone"/);

    service.reconciler.apply({ models: { face: { version: bundledFace.version, uri: bundledFace.uri, ...bundledFace.settings } } });
    await service.reconciler.settled();
    const after = await (await fetch(`${service.url}/metrics`)).text();
    t.false(after.includes('model="gone"'), after.split('\n').filter((line) => line.includes('model="gone"')).join('\n'));
    // The slot that stays keeps its series.
    t.regex(after, /edge_infer_requests_total\{route="\/models\/:name\/score",model="face",code="200"\} 1/);
    const status = (await (await fetch(`${service.url}/status`)).json()) as { counters: { requests: Record<string, unknown> } };
    t.deepEqual(Object.keys(status.counters.requests), ['face']);
  } finally {
    await service.close();
  }
});
