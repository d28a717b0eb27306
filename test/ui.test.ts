/**
 * The LAN status page in a real browser (playwright-core driving Debian's chromium) against the real program:
 * the test edgeHub gives it its twin (a model and an HTTP camera) and its keys come from the environment. The
 * page must refuse a wrong key, show what runs, follow a twin-driven swap without a reload, roll back from its
 * own button, show the camera's scored frame with its boxes, score a dropped photo and draw its faces, and
 * show the hub going away. A second test checks the open endpoint and the routes' keys on the in-process service.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { EdgeHub } from './support/edgehub.js';
import { FACES, photo } from './support/fixtures.js';
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
      models: Record<string, { version: string | null; status: string }>;
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

test('with keys, the page and its scripts load without one; the live stream needs one and carries the status and stored versions', async (t) => {
  const service = await startService({ keys: [KEY] });
  t.teardown(() => service.close());
  t.is((await fetch(`${service.url}/ui`)).status, 200);
  t.is((await fetch(`${service.url}/ui/assets/main.js`)).status, 200);
  t.is((await fetch(`${service.url}/ui/assets/..%2Fserver%2Fapp.js`)).status, 404);
  t.is((await fetch(`${service.url}/ui/events`)).status, 401);
  t.is((await fetch(`${service.url}/ui/events`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  const events = await fetch(`${service.url}/ui/events`, { headers: { authorization: `Bearer ${KEY}` } });
  t.is(events.status, 200);
  t.regex(events.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
  type Event = { status: { models: Record<string, { status: string; version: string | null }> }; stored: Record<string, string[]> };
  let text = '';
  const received: Event[] = [];
  const readUntil = async (done: (event: Event) => boolean) => {
    for (;;) {
      let end: number;
      while ((end = text.indexOf('\n\n')) >= 0) {
        const data = /^event: status\ndata: (.*)$/m.exec(text.slice(0, end));
        text = text.slice(end + 2);
        if (data) received.push(JSON.parse(data[1]!) as Event);
        if (data && done(received.at(-1)!)) return;
      }
      text += (await reader.read()).value ?? '';
    }
  };
  await readUntil(() => true);
  t.is(received[0]!.status.models.face?.status, 'active');
  t.deepEqual(received[0]!.stored.face, [BUNDLED_MODEL.version]);

  // A swap changes the store several times in a burst (pending, target, loading, active): the stream
  // coalesces them into fewer events, and the last one shows the new version active.
  let changes = 0;
  service.status.on('change', () => changes++);
  t.true(await service.deploy({ ...BUNDLED_MODEL, version: 'swapped' }));
  await readUntil((event) => event.status.models.face?.version === 'swapped');
  await reader.cancel();
  const during = received.length - 1;
  t.true(during >= 1 && during < changes, `${during} events for ${changes} changes`);
  t.is(received.at(-1)!.status.models.face?.status, 'active');
  t.log(`${during} events for ${changes} store changes during a swap`);
});
