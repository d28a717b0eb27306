/**
 * Fuzzing `POST /score` and `POST /models/{name}/score` (issue 12, point 7): JSON bodies near and far from a
 * tensor request, text that is almost JSON, images that are noise, cut, changed or claim huge sizes, odd content
 * types and model names. Every answer keeps the contract (4xx with our body, never 5xx), a good request after
 * each case scores as it did before, and resident memory comes back near where it started.
 */
import test from 'ava';
import fc from 'fast-check';
import sharp from 'sharp';
import { contentType, dtypeName, fuzzRuns, nestedOf, oddImageBytes, oddJsonText, pathName, statedShape, tensorData, tensorLeaf } from './support/arbitraries.js';
import { ocrClassifierPath } from './support/fixtures.js';
import { bodyOf, contractBreach, faceAnswer, residentMiB, smallPhoto, testResidentMemoryReturns } from './support/fuzz-checks.js';
import { bundledFace, startService, type TestService } from './support/service.js';

/** The PaddleOCR direction classifier, bare: one input `x` of [-1, 3, -1, -1], free dimensions to fuzz. */
const CLS = { name: 'cls', version: '1', uri: ocrClassifierPath };

let service: TestService;
/** A photo small enough to score quickly after every case, and what it scored before any. */
let goodImage: Buffer;
let goodAnswer: string;
let startMiB: number;

test.before(async () => {
  service = await startService({ models: [bundledFace, CLS] });
  goodImage = await smallPhoto();
  goodAnswer = await faceAnswer(service.url, goodImage);
  startMiB = residentMiB();
});
test.after.always(() => service?.close());

/** Sends one case and checks the answer, then that the good request still scores the same. */
async function sendAndCheck(path: string, type: string | undefined, body: string | Uint8Array): Promise<void> {
  const response = await fetch(`${service.url}${path}`, { method: 'POST', headers: type === undefined ? {} : { 'content-type': type }, body: body as BodyInit });
  const breach = contractBreach(response.status, await bodyOf(response));
  if (breach) throw new Error(`POST ${path} (${type}): ${breach}`);
  const after = await faceAnswer(service.url, goodImage);
  if (after !== goodAnswer) throw new Error(`the good request now answers ${after.slice(0, 300)}`);
}

/** Where a body goes: the default model, the free-dimension classifier, or a name from anywhere. */
const scorePath = fc.oneof(
  { weight: 2, arbitrary: fc.constant('/score') },
  { weight: 3, arbitrary: fc.constant('/models/cls/score') },
  { weight: 1, arbitrary: pathName.map((name) => `/models/${name}/score`) },
);

/** A tensor object as `{"inputs": {...}}` takes it. */
const tensorObject = fc.record({ dtype: dtypeName, shape: statedShape, data: tensorData }, { requiredKeys: ['data'] });

/** Near a good classifier request: the right input, free dimensions filled in oddly (zero, one, wide). */
const nearClassifier = fc
  .tuple(fc.integer({ min: 0, max: 2 }), fc.constantFrom(0, 1, 3, 4), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 40 }))
  .chain(([batch, channels, height, width]) => nestedOf([batch, channels, height, width], fc.oneof({ weight: 20, arbitrary: fc.double({ min: -1, max: 1, noNaN: true }) }, { weight: 1, arbitrary: tensorLeaf })))
  .chain((data) => fc.constantFrom({ data }, { inputs: { x: data } }, { inputs: { x: { dtype: 'float32', data } } }));

const scoreBody: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: nearClassifier.map((body) => JSON.stringify(body)) },
  { weight: 2, arbitrary: fc.record({ data: tensorData }).map((body) => JSON.stringify(body)) },
  { weight: 2, arbitrary: fc.record({ inputs: fc.dictionary(fc.constantFrom('x', 'input:0', 'y', '__proto__', ''), fc.oneof(tensorData, tensorObject), { maxKeys: 2 }) }).map((body) => JSON.stringify(body)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value) ?? 'null') },
  { weight: 2, arbitrary: oddJsonText },
);

test.serial('JSON bodies answer the contract and leave the models as they were', async (t) => {
  await fc.assert(
    fc.asyncProperty(scorePath, fc.oneof({ weight: 4, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: contentType }), scoreBody, sendAndCheck),
    fuzzRuns(60),
  );
  t.pass();
});

test.serial('image bodies answer the contract and leave the models as they were', async (t) => {
  // Valid pictures of odd sizes besides the broken ones: a line of pixels, a tall strip, a square.
  const sizes = fc.tuple(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 600 }), fc.constantFrom('png', 'jpeg', 'webp'));
  const valid = sizes.map(([width, height, format]) => ({ width, height, format }));
  const imageType = fc.constantFrom('image/jpeg', 'image/png', 'image/webp', 'IMAGE/JPEG', 'image/png; charset=binary');
  await fc.assert(
    fc.asyncProperty(
      fc.oneof({ weight: 3, arbitrary: fc.constant('/score') }, { weight: 1, arbitrary: fc.constant('/models/cls/score') }),
      imageType,
      fc.oneof({ weight: 3, arbitrary: oddImageBytes(new Uint8Array(goodImage)).map((bytes) => ({ bytes })) }, { weight: 1, arbitrary: valid }),
      async (path, type, image) => {
        const bytes =
          'bytes' in image
            ? image.bytes
            : await sharp({ create: { width: image.width, height: image.height, channels: 3, background: { r: 90, g: 140, b: 200 } } }).toFormat(image.format as 'png').toBuffer();
        await sendAndCheck(path, type, bytes);
      },
    ),
    fuzzRuns(40),
  );
  t.pass();
});

testResidentMemoryReturns(() => startMiB);
