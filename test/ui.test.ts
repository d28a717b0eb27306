/**
 * The LAN status page in a real browser (playwright-core driving Debian's chromium) against the real program:
 * the test edgeHub gives it its twin (a model and an HTTP camera) and its keys come from the environment. The
 * page must refuse a wrong key, show what runs, follow a twin-driven swap without a reload, roll back from its
 * own button, show the camera's scored frame with its boxes, score a dropped photo and draw its faces, list
 * recent results and errors, chart the request rate, show the load time, and show the hub going away. The other
 * tests check the open endpoint, the routes' keys and what the live stream carries on the in-process service.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import type { RecentEntry } from '../src/status/recent-results.js';
import type { RateSeries } from '../src/status/request-rates.js';
import { EdgeHub } from './support/edgehub.js';
import { FACES, photo, postImage } from './support/fixtures.js';
import { startHttpCamera } from './support/http-camera.js';
import { makeCertificate } from './support/network.js';
import { startProgram } from './support/program.js';
import { startService } from './support/service.js';
import { until } from './support/until.js';

const KEY = 'ui-test-key-6f1d2a';
const SCREENSHOT = new URL('../../bench/ui.png', import.meta.url);
const face = (version: string) => ({ version, uri: BUNDLED_MODEL.uri, ...BUNDLED_MODEL.settings });

function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

/** Where `value` holds an array (a twin cannot hold one). */
function arrayPaths(value: unknown, at = '$'): string[] {
  if (Array.isArray(value)) return [at];
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) => arrayPaths(inner, `${at}.${key}`));
}

/** The box colour the module and the page draw with (#00e676), with room for JPEG's rounding. */
const isBoxGreen = (r: number, g: number, b: number) => g > 170 && r < 110 && b < 160;

/** Counts box-green pixels of an image element or a canvas, as the browser rendered it. */
function greenPixelsIn(page: Page, selector: string): Promise<number> {
  return page.$eval(selector, (node) => {
    const source = node as HTMLImageElement | HTMLCanvasElement;
    const width = source instanceof HTMLImageElement ? source.naturalWidth : source.width;
    const height = source instanceof HTMLImageElement ? source.naturalHeight : source.height;
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext('2d')!;
    context.drawImage(source, 0, 0);
    const { data } = context.getImageData(0, 0, width, height);
    let green = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i + 1]! > 170 && data[i]! < 110 && data[i + 2]! < 160) green++;
    return green;
  });
}

test('the status page against the real program and its hub: keys, live swap, rollback, camera frame, try it, hub loss', async (t) => {
  const tls = await makeCertificate();
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-ui-'));
  await writeFile(path.join(dir, 'ca.pem'), tls.cert);
  const cameraPicture = await sharp(await photo(1)).resize(640).jpeg().toBuffer();
  const camera = await startHttpCamera({ jpeg: cameraPicture, fps: 5 });
  const hub = new EdgeHub({
    tls,
    hubName: 'hub.example',
    deviceId: 'gw',
    moduleId: 'edge-infer',
    key: Buffer.from('ui-test-key-'.repeat(4)).toString('base64'),
    desired: { models: { face: face('1') }, cameras: { door: { uri: camera.url('/mjpeg'), fps: 2 } } },
  });
  await hub.start();
  const program = await startProgram(['--store', path.join(dir, 'store'), '--hub-keepalive', '2'], {
    EDGE_INFER_CONNECTION_STRING: hub.connectionString,
    EDGE_INFER_CA_FILE: path.join(dir, 'ca.pem'),
    EDGE_INFER_KEYS: KEY,
  });
  const status = async () =>
    (await (await fetch(`${program.url}/status`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as {
      models: Record<string, { version: string | null; status: string; loadMs: number | null }>;
    };
  const browser = await launch();
  t.teardown(async () => {
    await browser.close();
    await program.stop();
    if (hub.running) await hub.stop();
    await camera.close();
  });
  await until(async () => (await status()).models.face?.status === 'active', 'version 1 active');

  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const urls: string[] = [];
  page.on('request', (request) => urls.push(request.url()));
  await page.goto(`${program.url}/ui`);

  // A wrong key is refused and shows nothing; the right one opens the page.
  await page.getByLabel('Scoring key').fill('not-the-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('That key was refused.').waitFor();
  t.true(await page.locator('#dashboard').isHidden());
  await page.getByLabel('Scoring key').fill(KEY);
  await page.keyboard.press('Enter');
  await page.locator('#dashboard').waitFor();
  t.true(await page.locator('#open-note').isHidden());

  // The model as active, then a twin-driven swap to version 2 without a reload.
  const model = page.locator('[data-model="face"]');
  await page.locator('[data-model="face"][data-status="active"][data-version="1"]').waitFor();
  const loaded = await page.evaluate(() => performance.timeOrigin);
  // Where the sections below the model start: a swap passing through its states must not move them.
  const layout = () => page.evaluate(() => ['cameras-title', 'try-title'].map((id) => document.getElementById(id)!.getBoundingClientRect().top));
  const before = await layout();
  await hub.patchDesired({ models: { face: face('2') } });
  await page.locator('[data-model="face"][data-status="active"][data-version="2"]').waitFor({ timeout: 30_000 });
  t.is(await page.evaluate(() => performance.timeOrigin), loaded, 'the page was not reloaded');
  t.deepEqual(await layout(), before, 'the layout did not move');

  // Rolling back from the page's own button, checked in /status.
  await model.getByRole('button', { name: 'activate 1' }).click();
  await until(async () => (await status()).models.face?.version === '1', 'version 1 active again after the rollback');
  await page.locator('[data-model="face"][data-version="1"]').waitFor();
  await model.getByText('1 is active.').waitFor();

  // The camera tile shows a scored frame with the boxes drawn; the plain picture has no such green.
  await page.locator('[data-camera="door"][data-status="streaming"][data-frames]').waitFor({ timeout: 30_000 });
  const { data } = await sharp(cameraPicture).resize(256, 256, { fit: 'contain' }).raw().toBuffer({ resolveWithObject: true });
  let plainGreen = 0;
  for (let i = 0; i < data.length; i += 3) if (isBoxGreen(data[i]!, data[i + 1]!, data[i + 2]!)) plainGreen++;
  const frameGreen = await greenPixelsIn(page, '[data-camera="door"] img');
  t.true(frameGreen > 100 && plainGreen < 10, `box-green pixels: ${frameGreen} in the tile's frame, ${plainGreen} in the plain picture`);

  // "Try it": a dropped photo is scored and its three faces drawn, each box's left edge green on the canvas.
  const dropped = await photo(3);
  const transfer = await page.evaluateHandle((base64) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], 'sample3.jpg', { type: 'image/jpeg' }));
    return data;
  }, dropped.toString('base64'));
  await page.locator('#drop').dispatchEvent('drop', { dataTransfer: transfer });
  await page.waitForFunction(() => /^(?!Scoring)\S/.test(document.getElementById('try-summary')!.textContent ?? ''));
  t.regex((await page.locator('#try-summary').textContent()) ?? '', /^3 detections in \d+ ms/);
  t.is(await page.locator('#try-canvas').getAttribute('data-detections'), '3');
  const edges = await page.$eval(
    '#try-canvas',
    (node, boxes) => {
      const context = (node as HTMLCanvasElement).getContext('2d')!;
      return boxes.map(([x1, y1, , y2]) => {
        const { data } = context.getImageData(x1 - 4, Math.round((y1 + y2) / 2), 9, 1);
        const pixels = [...Array(9).keys()].map((i) => [data[i * 4]!, data[i * 4 + 1]!, data[i * 4 + 2]!]);
        return pixels.some(([r, g, b]) => g! > 170 && r! < 110 && b! < 160);
      });
    },
    FACES[3]!,
  );
  t.deepEqual(edges, [true, true, true], 'a green left edge at each face');

  // Recent results: the photo just scored and a request that fails, each with its model and version (camera
  // frames are listed too), newest first.
  const refused = await postImage(`${program.url}/score`, Buffer.from('not a picture'), 'image/jpeg', { authorization: `Bearer ${KEY}` });
  const { error } = (await refused.json()) as { error: { code: string } };
  const cells = async (selector: string) => {
    await page.locator(selector).first().waitFor();
    return page.locator(selector).first().locator('td').allTextContents();
  };
  const [, source, name, version, latency, summary] = await cells('#recent-rows tr[data-kind="result"][data-source="rest"]');
  t.deepEqual([source, name, version, summary], ['rest', 'face', '1', '3 faces']);
  t.regex(latency ?? '', /^\d+(\.\d)? ms$/);
  const failed = await cells('#recent-rows tr[data-kind="error"][data-source="rest"]');
  t.deepEqual(failed.slice(2, 4), ['face', '1']);
  t.true(failed[5]?.startsWith(`${error.code}: `), `the error row says ${failed[5]}, the answer was ${refused.status} ${error.code}`);
  t.regex((await cells('#recent-rows tr[data-kind="result"][data-source="camera"]'))[5] ?? '', /^\d+ faces?$/);

  // The chart samples the two requests above (every 5 s); the card shows the active version's load time.
  const chart = model.locator('svg[data-peak]:not([data-peak="0"])');
  await chart.waitFor({ timeout: 20_000 });
  t.true(Number(await chart.getAttribute('data-samples')) >= 1);
  t.regex((await chart.locator('path.rate').getAttribute('d')) ?? '', /^M[\d.]+ [\d.]+/);
  const loadMs = (await status()).models.face?.loadMs;
  t.true(typeof loadMs === 'number' && loadMs > 0, `loadMs ${loadMs}`);
  t.regex((await model.locator('dt:text-is("Load time") + dd').textContent()) ?? '', /^\d+ ms$|^\d+\.\d s$/);
  // The reported properties carry it too, and the twin holds no arrays (it cannot).
  await until(() => typeof (hub.reported as { models?: Record<string, { loadMs?: unknown }> }).models?.face?.loadMs === 'number', 'loadMs reported');
  t.deepEqual(arrayPaths(hub.reported), []);

  await mkdir(new URL('.', SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT.pathname, fullPage: true });

  // The hub goes away: the page says so within a few seconds.
  await page.locator('#hub[data-state="connected"]').waitFor();
  await hub.stop();
  const gone = Date.now();
  await page.locator('#hub:not([data-state="connected"])').waitFor({ timeout: 10_000 });
  t.regex((await page.locator('#hub').textContent()) ?? '', /not connected/);
  t.log(`the hub's loss showed after ${Date.now() - gone} ms`);

  // The key travelled in headers only: never in a URL, never in a cookie.
  t.false(urls.some((url) => url.includes(KEY)), 'no request URL carries the key');
  t.deepEqual(await page.context().cookies(), []);
});

test('without keys the page says the endpoint is open, on a phone-sized screen', async (t) => {
  const service = await startService();
  const browser = await launch();
  t.teardown(async () => {
    await browser.close();
    await service.close();
  });
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await page.goto(`${service.url}/ui`);
  await page.locator('#open-note').waitFor();
  t.regex((await page.locator('#open-note').textContent()) ?? '', /open/);
  t.true(await page.locator('#login').isHidden());
  await page.locator('[data-model="face"][data-status="active"]').waitFor();
  t.regex((await page.locator('#hub').textContent()) ?? '', /standalone/);
  // Nothing wider than the screen: no sideways scrolling on a phone.
  t.true(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
});

/** Reads a `/ui/events` stream: `until` hands each event of one kind over until the check says enough. */
async function openEvents(url: string) {
  const events = await fetch(`${url}/ui/events`, { headers: { authorization: `Bearer ${KEY}` } });
  const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  return {
    response: events,
    close: () => reader.cancel(),
    async until<T>(kind: string, done: (data: T) => boolean): Promise<T[]> {
      const received: T[] = [];
      for (;;) {
        let end: number;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const event = /^event: (\w+)\ndata: (.*)$/m.exec(text.slice(0, end));
          text = text.slice(end + 2);
          if (event?.[1] !== kind) continue;
          received.push(JSON.parse(event[2]!) as T);
          if (done(received.at(-1)!)) return received;
        }
        text += (await reader.read()).value ?? '';
      }
    },
  };
}

test('with keys, the page and its scripts load without one; the live stream needs one and carries the status and stored versions', async (t) => {
  const service = await startService({ keys: [KEY] });
  t.teardown(() => service.close());
  t.is((await fetch(`${service.url}/ui`)).status, 200);
  t.is((await fetch(`${service.url}/ui/assets/main.js`)).status, 200);
  t.is((await fetch(`${service.url}/ui/assets/..%2Fserver%2Fapp.js`)).status, 404);
  t.is((await fetch(`${service.url}/ui/events`)).status, 401);
  t.is((await fetch(`${service.url}/ui/events`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  const events = await openEvents(service.url);
  t.is(events.response.status, 200);
  t.regex(events.response.headers.get('content-type') ?? '', /^text\/event-stream/);
  type Event = { status: { models: Record<string, { status: string; version: string | null }> }; stored: Record<string, string[]> };
  const [first] = await events.until<Event>('status', () => true);
  t.is(first!.status.models.face?.status, 'active');
  t.deepEqual(first!.stored.face, [BUNDLED_MODEL.version]);

  // A swap changes the store several times in a burst (pending, target, loading, active): the stream
  // coalesces them into fewer events, and the last one shows the new version active.
  let changes = 0;
  service.status.on('change', () => changes++);
  t.true(await service.deploy({ ...BUNDLED_MODEL, version: 'swapped' }));
  const during = await events.until<Event>('status', (event) => event.status.models.face?.version === 'swapped');
  await events.close();
  t.true(during.length >= 1 && during.length < changes, `${during.length} events for ${changes} changes`);
  t.is(during.at(-1)!.status.models.face?.status, 'active');
  t.log(`${during.length} events for ${changes} store changes during a swap`);
});

test('the live stream lists recent results and errors, at most 5 a second per model with a count of the rest, and samples request rates', async (t) => {
  const service = await startService({ keys: [KEY] });
  t.teardown(() => service.close());
  const events = await openEvents(service.url);
  t.teardown(() => events.close());
  const [kept] = await events.until<RecentEntry[]>('recent', () => true);
  t.true(Array.isArray(kept));
  const [series] = await events.until<RateSeries>('rates', () => true);
  t.like(series, { intervalMs: 5000, slots: 60 });

  // 20 calls at once through the registry, as every source makes them (the work stands in for a model's
  // score, so that all 20 end within the same second), and one to a slot that does not exist.
  const calls = Array.from({ length: 20 }, () => service.registry.use('method', 'face', undefined, async (model) => ({ result: { detections: [] }, model })));
  await Promise.all(calls);
  await t.throwsAsync(service.registry.use('rest', 'nope', undefined, async () => undefined), { code: 'EI_MODEL_NOT_FOUND' });
  const entries = (await events.until<RecentEntry[]>('results', (batch) => batch.some((entry) => entry.kind === 'skipped'))).flat();
  const listed = entries.filter((entry) => entry.kind === 'result' && entry.model === 'face');
  t.is(listed.length, 5);
  t.like(listed[0], { source: 'method', version: BUNDLED_MODEL.version, summary: 'no faces' });
  t.like(
    entries.find((entry) => entry.kind === 'skipped'),
    { model: 'face', count: 15 },
  );
  t.like(
    entries.find((entry) => entry.kind === 'error'),
    { source: 'rest', model: 'nope', version: null, error: { code: 'EI_MODEL_NOT_FOUND' } },
  );
  t.true(entries.every((entry, i) => i === 0 || entry.id > entries[i - 1]!.id), 'ids grow');

  // An Open Inference Protocol call is listed with the tensors it answered (binary, read from its JSON header).
  const pixels = Buffer.from(new Float32Array(256 * 256 * 3).buffer);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'input:0', shape: [1, 256, 256, 3], datatype: 'FP32', parameters: { binary_data_size: pixels.length } }],
      outputs: [{ name: 'Identity:0', parameters: { binary_data: true } }],
    }),
  );
  const infer = await fetch(`${service.url}/v2/models/face/infer`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    body: Buffer.concat([header, pixels]),
  });
  t.is(infer.status, 200);
  const isInfer = (entry: RecentEntry) => entry.kind === 'result' && entry.source === 'oip';
  const [inferred] = (await events.until<RecentEntry[]>('results', (batch) => batch.some(isInfer))).flat().filter(isInfer);
  t.like(inferred, { model: 'face', version: BUNDLED_MODEL.version });
  t.regex((inferred as { summary: string }).summary, /^Identity:0 1(×\d+)+$/);

  // Real requests over HTTP show in the samples of the request histogram (the registry calls above are not
  // HTTP requests; the infer is), with their mean latency.
  const picture = await sharp(await photo(3)).resize(320).jpeg().toBuffer();
  for (let i = 0; i < 3; i++) t.is((await postImage(`${service.url}/score`, picture, 'image/jpeg', { authorization: `Bearer ${KEY}` })).status, 200);
  const counted = (next: RateSeries) => next.samples.reduce((sum, sample) => sum + ((sample.models.face?.perSecond ?? 0) * next.intervalMs) / 1000, 0);
  const [last] = (await events.until<RateSeries>('rates', (next) => Math.round(counted(next)) >= 4)).slice(-1);
  t.is(Math.round(counted(last!)), 4, 'one infer and three /score requests');
  const latencies = last!.samples.flatMap((sample) => sample.models.face?.meanMs ?? []);
  t.true(latencies.length > 0 && latencies.every((ms) => ms > 0), `mean latencies ${latencies.join(', ')} ms`);
});
