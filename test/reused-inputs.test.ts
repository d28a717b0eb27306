/**
 * A version reuses its image input arrays once a run is over (engine/reused-arrays.ts): on the real BlazeFace
 * model, image and pixel requests scored at once answer what each answers alone, also in the waves that take the
 * arrays earlier requests gave back (an array given back before its run was over fails this).
 */
import test from 'ava';
import pino from 'pino';
import sharp from 'sharp';
import { Engine } from '../src/engine/engine.js';
import { loadModelVersion, type ModelVersion, type ScoreRequest } from '../src/engine/loaded-version.js';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { readModelPackage } from '../src/models/package.js';
import { identityGeometry } from '../src/pipeline/image.js';
import { photo } from './support/fixtures.js';

async function bundled(): Promise<ModelVersion> {
  const pkg = await readModelPackage(BUNDLED_MODEL.uri, BUNDLED_MODEL.settings);
  const target = await new Engine({ onProbe: () => undefined }).place('face', { target: 'cpu', fallback: 'cpu' }, () => undefined);
  return loadModelVersion({ name: 'face', version: 'v', pkg, target, log: pino({ level: 'silent' }) });
}

/** Each photo as a JPEG request and as the RGB pixels a camera would hand over at the model's size. */
async function requests(): Promise<ScoreRequest[]> {
  const list: ScoreRequest[] = [];
  for (const n of [1, 2, 3, 4]) {
    const image = await photo(n);
    list.push({ kind: 'image', image, contentType: 'image/jpeg' });
    const pixels = await sharp(image).removeAlpha().resize(256, 256, { fit: 'fill' }).raw().toBuffer();
    list.push({ kind: 'pixels', pixels, geometry: identityGeometry(256, 256) });
  }
  return list;
}

test('requests scored at once answer what each answers alone, also once the input arrays are reused', async (t) => {
  const model = await bundled();
  t.teardown(() => model.release());
  const all = await requests();
  const alone: unknown[] = [];
  for (const request of all) alone.push(await model.score(request));
  // The photos differ in their faces, so an input that another request overwrote would answer differently.
  t.true(new Set(alone.map((answer) => JSON.stringify(answer))).size >= 4);
  for (let wave = 0; wave < 3; wave++) {
    const order = all.map((_, i) => (i * 3 + wave) % all.length);
    const answers = await Promise.all(order.map((i) => model.score(all[i]!)));
    answers.forEach((answer, k) => t.deepEqual(answer, alone[order[k]!], `wave ${wave}, request ${order[k]}`));
  }
});
