import test from 'ava';
import sharp from 'sharp';
import { FACES, iou, landscape, photo, postImage, type Box, type Detections } from './support/fixtures.js';
import { startService, type TestService } from './support/service.js';

function assertFaces(t: import('ava').ExecutionContext, found: Detections, expected: Box[], scale = 1): void {
  t.is(found.detections.length, expected.length, `found ${JSON.stringify(found.detections.map((d) => d.box))}`);
  for (const box of expected) {
    const scaled = box.map((v) => v * scale) as Box;
    const best = Math.max(...found.detections.map((d) => iou(d.box, scaled)));
    t.true(best > 0.75, `no detection overlaps the face at ${JSON.stringify(scaled)} (best IoU ${best.toFixed(2)})`);
  }
}

let service: TestService;
test.before(async () => {
  service = await startService();
});
test.after.always(() => service?.close());

for (const n of [1, 2, 3, 4, 5, 6]) {
  test(`finds the faces in sample${n}.jpg where they are`, async (t) => {
    const response = await postImage(`${service.url}/score`, await photo(n));
    t.is(response.status, 200);
    const found = (await response.json()) as Detections;
    assertFaces(t, found, FACES[n]!);
    for (const d of found.detections) {
      t.true(d.score >= 0.5 && d.score <= 1);
      t.is(d.keypoints.length, 6);
      // Eyes and nose lie inside the face box.
      for (const [x, y] of d.keypoints.slice(0, 3)) t.true(x >= d.box[0] && x <= d.box[2] && y >= d.box[1] && y <= d.box[3]);
    }
  });
}

test('finds no face in a landscape', async (t) => {
  const response = await postImage(`${service.url}/score`, await landscape());
  t.is(response.status, 200);
  t.deepEqual(await response.json(), { detections: [] });
});

test('answers in pixels of the image as sent, for PNG and WebP and a smaller copy', async (t) => {
  const original = await photo(1);
  const half = await sharp(original).resize(960).toBuffer();
  for (const [image, type, scale] of [
    [await sharp(original).png().toBuffer(), 'image/png', 1],
    [await sharp(original).webp({ quality: 90 }).toBuffer(), 'image/webp', 1],
    [half, 'image/jpeg', 0.5],
  ] as const) {
    const response = await postImage(`${service.url}/models/face/score`, image, type);
    t.is(response.status, 200, type);
    assertFaces(t, (await response.json()) as Detections, FACES[1]!, scale);
  }
});

test('follows EXIF orientation: a photo stored sideways is answered as it is displayed', async (t) => {
  // Stored turned a quarter clockwise, tagged orientation 8 ("rotate 270° to display"): shown upright.
  const sideways = await sharp(await photo(1)).rotate(90).withMetadata({ orientation: 8 }).jpeg().toBuffer();
  const response = await postImage(`${service.url}/score`, sideways);
  t.is(response.status, 200);
  assertFaces(t, (await response.json()) as Detections, FACES[1]!);
});
