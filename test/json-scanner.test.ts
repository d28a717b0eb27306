/**
 * The JSON body scanner (src/pipeline/json-scan.ts) against the reference it replaces on the hot path:
 * JSON.parse (after the nesting check) and the plain-array tensor path. On every text, fuzzed with a fixed seed,
 * both must take the same decision and give the same numbers: the same feeds (every element, -0 included) or the
 * same error, for `/score` bodies and OIP infer requests; and the scanned value reads as JSON.parse's does.
 */
import { deepStrictEqual } from 'node:assert/strict';
import test from 'ava';
import fc from 'fast-check';
import type { Feeds, ModelSignature } from '../src/engine/tensor.js';
import { feedsFromScoreBody } from '../src/pipeline/json-tensors.js';
import { DECLINED, scanJson } from '../src/pipeline/json-scan.js';
import { fieldOf, NumericBlock } from '../src/pipeline/numeric-block.js';
import { decodeInferRequest } from '../src/pipeline/oip-codec.js';
import { checkJsonDepth, MAX_JSON_DEPTH } from '../src/server/json-depth.js';
import { fuzzRuns } from './support/arbitraries.js';
import { digitRun, edgeDouble, nearMidpoint, numberText } from './support/json-numbers.js';

// ---- Texts ----------------------------------------------------------------------------------------------------

/** What sits where a tensor element should: mostly numbers, sometimes what JSON allows but a tensor does not. */
const element = fc.oneof(
  { weight: 30, arbitrary: numberText },
  { weight: 1, arbitrary: fc.constantFrom('"a"', '"1"', 'true', 'false', 'null', '{}', '[]', '[1]', '"\\u0031"', 'tru', '"') },
);

const space = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('', ' ', '\n', '\t', '\r\n  ') }, { weight: 1, arbitrary: fc.constantFrom('\u00a0', '\f', '\v') });

/** A nested array of `shape`, written with random spacing, ragged at `ragged` (a row one short) when given. */
const arrayText = (shape: number[], leaf: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc
    .tuple(
      fc.array(leaf, { minLength: shape.reduce((a, b) => a * b, 1) + 1, maxLength: shape.reduce((a, b) => a * b, 1) + 1 }),
      fc.array(space, { minLength: 8, maxLength: 8 }),
      fc.option(fc.nat(50), { freq: 4 }),
    )
    .map(([leaves, spaces, ragged]) => {
      let nextLeaf = 0;
      let nextGap = 0;
      let rows = 0;
      const gap = () => spaces[nextGap++ % spaces.length]!;
      const build = (depth: number): string => {
        if (depth === shape.length) return leaves[nextLeaf++ % leaves.length]!;
        let length = shape[depth]!;
        if (depth === shape.length - 1 && ragged !== null && rows++ === ragged) length = length === 0 ? 1 : length - 1;
        return `[${gap()}${Array.from({ length }, () => build(depth + 1)).join(`${gap()},${gap()}`)}${gap()}]`;
      };
      return build(0);
    });

const shapeOf = fc.oneof(
  { weight: 20, arbitrary: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 4 }) },
  // Around the nesting limit: a body nests two levels above its data.
  { weight: 1, arbitrary: fc.integer({ min: MAX_JSON_DEPTH - 3, max: MAX_JSON_DEPTH + 1 }).map((rank) => Array.from({ length: rank }, () => 1)) },
);

/** A key as text: plain, or with unicode escapes that JSON.parse decodes to the same name. */
const keyText = (name: string) =>
  fc.constantFrom(`"${name}"`, `"${[...name].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`, `"${name.slice(0, 1)}\\u${name.charCodeAt(1).toString(16).padStart(4, '0')}${name.slice(2)}"`);

const otherMember = fc.constantFrom('"id": "r1"', '"extra": [1, 2]', '"\\u00e9t\\u00e9": {"a": [true, null]}', '"__proto__": {"data": [1]}', '"constructor": {"prototype": {}}', '"data": 7', '"": ""');

const dtypeText = fc.constantFrom('"float32"', '"float64"', '"int32"', '"int64"', '"uint8"', '"bool"', '"float16"', '3');

/** A /score body around a tensor: {"data": …} or {"inputs": {"x": … | {dtype, shape, data}}}, with extra and duplicate members. */
const scoreBody = fc
  .tuple(shapeOf, fc.constantFrom('data', 'inputs', 'tensor'), space, fc.array(otherMember, { maxLength: 2 }), dtypeText, fc.boolean())
  .chain(([shape, kind, gap, others, dtype, stateShape]) =>
    fc.tuple(arrayText(shape, element), keyText('data'), keyText('inputs')).map(([array, dataKey, inputsKey]) => {
      const members: string[] = [...others];
      if (kind === 'data') members.splice(members.length > 0 ? 1 : 0, 0, `${dataKey}${gap}:${gap}${array}`);
      else if (kind === 'inputs') members.push(`${inputsKey}: {"x":${gap}${array}}`);
      else members.push(`${inputsKey}: {"x": {"dtype": ${dtype}, ${stateShape ? `"shape": ${JSON.stringify(shape)}, ` : ''}${dataKey}: ${array}}}`);
      return `{${gap}${members.join(`,${gap}`)}${gap}}`;
    }),
  );

/** An OIP infer request whose input carries JSON data. */
const oipBody = fc
  .tuple(shapeOf, fc.constantFrom('FP32', 'FP64', 'INT32', 'INT64', 'UINT8', 'BOOL', 'FP16'), fc.array(otherMember, { maxLength: 1 }))
  .chain(([shape, datatype, others]) =>
    arrayText(shape, element).map((array) => `{${[...others, `"inputs": [{"name": "x", "shape": ${JSON.stringify(shape)}, "datatype": "${datatype}", "data": ${array}}]`].join(', ')}}`),
  );

/** A text cut short or with one structural character put in at a random place. */
const damaged = (text: fc.Arbitrary<string>) =>
  fc.tuple(text, fc.nat(), fc.constantFrom('', '[', ']', '{', '}', ',', ':', '"', '\\', '\u0001', '\u00ff')).map(([body, at, inserted]) => {
    const cut = at % (body.length + 1);
    return inserted === '' ? body.slice(0, cut) : body.slice(0, cut) + inserted + body.slice(cut);
  });

const signature = fc
  .tuple(fc.constantFrom('float32', 'float64', 'int32', 'int64', 'uint8', 'bool'), fc.integer({ min: 1, max: 4 }))
  .map(([type, rank]): ModelSignature => ({ inputs: [{ name: 'x', type, shape: Array.from({ length: rank }, (_, i) => `d${i}`) }], outputs: [] }));

// ---- Outcomes -------------------------------------------------------------------------------------------------

/** What a decode came to, in a form that tells -0 from 0 and a bigint from a number. */
function outcome(decode: () => Feeds): unknown {
  try {
    const feeds = decode();
    return Object.entries(feeds).map(([name, tensor]) => ({
      name,
      type: tensor.type,
      dims: [...tensor.dims],
      array: tensor.data.constructor.name,
      data: Array.from(tensor.data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? `${v}n` : Object.is(v, -0) ? '-0' : v)),
    }));
  } catch (error) {
    const { name, message, code } = error as Error & { code?: string };
    return { refused: `${name} ${code ?? ''}: ${message}` };
  }
}

/** JSON with -0 kept apart from 0; reading every field also runs the blocks' accessors. */
const canonical = (value: unknown) => JSON.stringify(value, (_key, v: unknown) => (Object.is(v, -0) ? '-0' : v));

function sameValue(text: Buffer): boolean {
  const scanned = scanJson(text, 0, text.length, MAX_JSON_DEPTH);
  if (scanned === DECLINED) return true;
  return canonical(scanned) === canonical(JSON.parse(text.toString('utf8')));
}

/**
 * Bodies from `texts`, and damaged ones: decoded after the scanner (after the reference path where it declines),
 * they give what they give after the nesting check and JSON.parse, and the scanned value reads as JSON.parse's.
 * @param decode decodes a body, from the scanned value when one is given, else with JSON.parse
 */
function sameAsReference(texts: fc.Arbitrary<string>, decode: (bytes: Buffer, sig: ModelSignature, scanned?: unknown) => Feeds, runs: number): void {
  const body = fc.oneof({ weight: 4, arbitrary: texts }, { weight: 1, arbitrary: damaged(texts) });
  fc.assert(
    fc.property(body, signature, (text, sig) => {
      const bytes = Buffer.from(text);
      const reference = outcome(() => {
        checkJsonDepth(bytes);
        return decode(bytes, sig);
      });
      const scanned = scanJson(bytes, 0, bytes.length, MAX_JSON_DEPTH);
      deepStrictEqual(scanned === DECLINED ? reference : outcome(() => decode(bytes, sig, scanned)), reference);
      return sameValue(bytes);
    }),
    fuzzRuns(runs),
  );
}

// ---- Properties -----------------------------------------------------------------------------------------------

test('every number reads as JSON.parse reads it, or the text is refused by both', (t) => {
  fc.assert(
    fc.property(fc.array(numberText, { minLength: 1, maxLength: 8 }), (numbers) => {
      const text = Buffer.from(`[${numbers.join(',')}]`);
      const scanned = scanJson(text, 0, text.length, MAX_JSON_DEPTH);
      let reference: unknown;
      try {
        reference = JSON.parse(text.toString());
      } catch {
        return scanned === DECLINED;
      }
      return scanned !== DECLINED && canonical(scanned) === canonical(reference);
    }),
    fuzzRuns(3000),
  );
  t.pass();
});

test('numbers at the edges of the fast reader read as JSON.parse reads them, bit for bit', (t) => {
  fc.assert(
    fc.property(fc.array(fc.oneof(digitRun, edgeDouble, nearMidpoint), { minLength: 1, maxLength: 8 }), (numbers) => {
      const text = Buffer.from(`[${numbers.join(',')}]`);
      const scanned = scanJson(text, 0, text.length, MAX_JSON_DEPTH);
      return scanned !== DECLINED && canonical(scanned) === canonical(JSON.parse(text.toString()));
    }),
    fuzzRuns(4000),
  );
  t.pass();
});

test('a slice of a buffer is read to its end and no further, though digits follow it', (t) => {
  const bytes = Buffer.from('{"data": [0.12345678, 1.5, 12.25]}99999999');
  t.deepEqual(scanJson(bytes, 0, bytes.length - 8, MAX_JSON_DEPTH), { data: [0.12345678, 1.5, 12.25] });
  for (const [text, cut] of [['0.123456789012', 6], ['-0.1234567890', 9], ['123456789', 4]] as const) {
    const number = Buffer.from(text);
    t.is(scanJson(number, 0, cut, MAX_JSON_DEPTH), JSON.parse(text.slice(0, cut)), text);
  }
});

test('/score bodies: the same decision and the same numbers as JSON.parse and the plain-array path', (t) => {
  sameAsReference(scoreBody, (bytes, sig, scanned) => feedsFromScoreBody('m', sig, scanned ?? JSON.parse(bytes.toString('utf8'))), 600);
  t.pass();
});

test('OIP infer requests with JSON data: the same decision and the same numbers as JSON.parse', (t) => {
  sameAsReference(oipBody, (bytes, sig, scanned) => decodeInferRequest('m', sig, bytes, undefined, scanned).feeds, 400);
  t.pass();
});

test('a tensor body is read into one typed block, not nested arrays, and an entry script still sees plain arrays', (t) => {
  const rows = Array.from({ length: 64 }, (_, i) => Array.from({ length: 3 }, (_, j) => Math.fround(Math.sin(i * 3 + j))));
  const text = Buffer.from(JSON.stringify({ data: [rows] }, null, 1));
  const scanned = scanJson(text, 0, text.length, MAX_JSON_DEPTH) as Record<string, unknown>;
  const block = fieldOf(scanned, 'data');
  t.true(block instanceof NumericBlock);
  t.deepEqual((block as NumericBlock).shape, [1, 64, 3]);
  t.deepEqual(Array.from((block as NumericBlock).values), rows.flat());
  // Read as plain JSON (what an entry script does), it is JSON.parse's value; the block is then gone.
  t.deepEqual(scanned.data, JSON.parse(text.toString()).data);
  t.false(fieldOf(scanned, 'data') instanceof NumericBlock);
});

test('a float32 tensor takes the block the reader made as it is; an integer tensor still refuses a fraction or an overflow', (t) => {
  const scan = (text: string) => scanJson(Buffer.from(text), 0, text.length, MAX_JSON_DEPTH) as Record<string, unknown>;
  const of = (type: string): ModelSignature => ({ inputs: [{ name: 'x', type, shape: ['n'] }], outputs: [] });
  const scanned = scan('{"data": [0.10000000149011612, -0.5, 3]}');
  const block = fieldOf(scanned, 'data') as NumericBlock;
  t.true(block.values instanceof Float32Array);
  t.is(feedsFromScoreBody('m', of('float32'), scanned).x!.data, block.values);
  // Any other dtype gets its own array of the same numbers.
  t.deepEqual(Array.from(feedsFromScoreBody('m', of('float64'), scan('{"data": [0.10000000149011612, -0.5, 3]}')).x!.data as Float64Array), [0.10000000149011612, -0.5, 3]);
  t.throws(() => feedsFromScoreBody('m', of('int32'), scan('{"data": [1, 2.5]}')), { message: /a value 2\.5/ });
  t.throws(() => feedsFromScoreBody('m', of('int32'), scan('{"data": [1, 1e400]}')), { message: /a value null/ });
  t.throws(() => feedsFromScoreBody('m', of('float32'), scan('{"data": [1, -1e400]}')), { message: /a value null/ });
  t.deepEqual(Array.from(feedsFromScoreBody('m', of('int32'), scan('{"data": [1, -2, 16777217]}')).x!.data as Int32Array), [1, -2, 16777217]);
});

test('the scanner declines what JSON.parse refuses, prototype keys and nesting past the limit', (t) => {
  for (const text of ['', ' ', '{', '{"data": [1, 2]', '{"data": [1, 2]} x', '\ufeff{"data": [1]}', '{"a": "\u0001"}', '{"__proto__": {}}', '{"constructor": {"prototype": {}}}', '{"data": [01]}', `{"data": ${'['.repeat(MAX_JSON_DEPTH)}1${']'.repeat(MAX_JSON_DEPTH)}}`]) {
    const bytes = Buffer.from(text);
    t.is(scanJson(bytes, 0, bytes.length, MAX_JSON_DEPTH), DECLINED, JSON.stringify(text));
  }
  const deepest = Buffer.from(`{"data": ${'['.repeat(MAX_JSON_DEPTH - 1)}1${']'.repeat(MAX_JSON_DEPTH - 1)}}`);
  t.not(scanJson(deepest, 0, deepest.length, MAX_JSON_DEPTH), DECLINED);
});
