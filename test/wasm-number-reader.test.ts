/**
 * The WebAssembly number reader (wasm/number-reader.ts through src/pipeline/wasm-number-reader.ts) against
 * JSON.parse, fuzzed with a fixed seed: a rectangular array of numbers it takes gives JSON.parse's shape and
 * JSON.parse's doubles bit for bit (-0, subnormals, overflow to Infinity, 20 and more digits included); what
 * JSON.parse refuses or what is no such array it leaves to the JS scanner. The JS scanner around it (json-scan.ts)
 * then decodes every body as JSON.parse does, also where the reader stops or lists numbers it did not prove.
 */
import { Buffer } from 'node:buffer';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test from 'ava';
import fc from 'fast-check';
import { DECLINED, scanJson } from '../src/pipeline/json-scan.js';
import type { BlockFacts } from '../src/pipeline/numeric-block.js';
import { numberReader } from '../src/pipeline/wasm-number-reader.js';
import { MAX_JSON_DEPTH } from '../src/server/json-depth.js';
import { fuzzRuns } from './support/arbitraries.js';
import { digitRun, edgeDouble, nearMidpoint, numberText } from './support/json-numbers.js';

const jsonSpace = fc.constantFrom('', '', '', ' ', '\n', '\t', '\r\n  ');
/** Also a space JSON does not allow. */
const anySpace = fc.oneof({ weight: 8, arbitrary: jsonSpace }, { weight: 1, arbitrary: fc.constant('\u00a0') });

/** `leaves` written as a rows × columns array (one row of them all when columns is 0), with random spacing. */
const matrixText = (leaves: fc.Arbitrary<string>, space: fc.Arbitrary<string> = jsonSpace) =>
  fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 5 }), fc.array(space, { minLength: 4, maxLength: 4 })).chain(([rows, columns, [a, b, c, d]]) =>
    fc.array(leaves, { minLength: rows * Math.max(columns, 1), maxLength: rows * Math.max(columns, 1) }).map((numbers) => {
      if (columns === 0) return { rank: 1, text: `[${a}${numbers.join(`${b},${c}`)}${d}]` };
      const lines = Array.from({ length: rows }, (_, i) => `[${b}${numbers.slice(i * columns, (i + 1) * columns).join(`${c},${a}`)}${d}]`);
      return { rank: 2, text: `${a}[${lines.join(`,${b}`)}]` };
    }),
  );

/** The reader's answer for `text`: its shape, values and facts, or undefined when it left the array to the JS scanner. */
function readByWasm(text: string, rank: number): { end: number; shape: number[]; values: Float64Array | Float32Array; facts: BlockFacts } | undefined {
  numberReader.load(Buffer.from(text));
  const start = text.indexOf('[');
  const end = numberReader.block(start, rank);
  if (end < 0) return undefined;
  return { end, shape: numberReader.shape(rank), ...numberReader.values() };
}

/** The shape of JSON.parse's nested arrays and their numbers in row order. */
function flatten(value: unknown, rank: number): { shape: number[]; values: number[] } {
  const shape: number[] = [];
  let level: unknown = value;
  for (let i = 0; i < rank; i++) {
    shape.push((level as unknown[]).length);
    level = (level as unknown[])[0];
  }
  return { shape, values: (value as unknown[]).flat(rank) as number[] };
}

/** The same double, bit for bit (Object.is tells -0 from 0). */
const sameDoubles = (actual: Float64Array | Float32Array, expected: number[]) => actual.length === expected.length && expected.every((v, i) => Object.is(actual[i], v));

/** A JSON array of numbers: the reader takes it with JSON.parse's shape and doubles, or leaves it and JSON.parse refuses it. */
function agreesWithJsonParse(text: string, rank: number): boolean {
  const read = readByWasm(text, rank);
  let reference: unknown;
  try {
    reference = JSON.parse(text);
  } catch {
    return read === undefined;
  }
  if (read === undefined) return false;
  const { shape, values } = flatten(reference, rank);
  return text.slice(read.end).trim() === '' && read.shape.join() === shape.join() && sameDoubles(read.values, values);
}

test('arrays of numbers of every form read as JSON.parse reads them, or are left to the JS scanner when JSON.parse refuses them', (t) => {
  fc.assert(
    fc.property(matrixText(numberText, anySpace), ({ text, rank }) => agreesWithJsonParse(text, rank)),
    fuzzRuns(4000),
  );
  t.pass();
});

test('numbers at the edges of the exact rounding read as JSON.parse reads them, bit for bit', (t) => {
  fc.assert(
    // All of them are JSON numbers: the reader takes every such array (proving or listing each number).
    fc.property(matrixText(fc.oneof(digitRun, edgeDouble, nearMidpoint)), ({ text, rank }) => readByWasm(text, rank) !== undefined && agreesWithJsonParse(text, rank)),
    fuzzRuns(4000),
  );
  t.pass();
});

test('named edge cases: -0, overflow, underflow, subnormals, exponents around ±22 and ±308, 2^53, 20 digits and more', (t) => {
  const numbers = [
    '0', '-0', '-0.0', '0e400', '-0E-5', '0.000', '1e400', '-1e400', '1e-400', '5e-324', '-4.9406564584124654e-324',
    '2.2250738585072014e-308', '2.2250738585072011e-308', '1.7976931348623157e308', '1.7976931348623159e308',
    '1e22', '1e23', '1e-22', '1e-23', '123456789e22', '123456789e-22', '9007199254740991e-22', '9007199254740993',
    '9007199254740992.5', '18446744073709551615', '9999999999999999999', '10000000000000000000', '0.30000000000000004',
    '0.10000000149011612', '-0.9999999403953552', '1.1754943508222875e-38', '3.4028234663852886e38',
    '0.000001', '0.0000000000000000000000000000001', '123456789012345678901234567890', '1.00000000000000000000001',
    '4.35e-7', '1E2', '1e+2', '1e-0', '100000000000000000000000e-40',
  ];
  const text = `[${numbers.join(',')}]`;
  const read = readByWasm(text, 1);
  t.truthy(read);
  t.true(sameDoubles(read!.values, JSON.parse(text) as number[]));
  for (const number of numbers) t.true(agreesWithJsonParse(`[${number}]`, 1), number);
});

test('no JSON number, or no rectangular array of numbers: left to the JS scanner', (t) => {
  for (const text of ['[01]', '[1.]', '[.5]', '[+1]', '[-]', '[1e]', '[1e+]', '[--1]', '[NaN]', '[Infinity]', '[0x10]', '[- 1]', '[1,]', '[,1]', '[1 2]', '[1', '[1,"a"]', '[1,true]', '[1,null]', '[1,{}]', '[1,[2]]']) {
    t.is(readByWasm(text, 1), undefined, text);
  }
  for (const text of ['[[1,2],[3]]', '[[1],[2,3]]', '[[1,2],3]', '[[1,2],[3,"4"]]', '[[], [1]]', '[[1]', '[[1],]']) t.is(readByWasm(text, 2), undefined, text);
  t.deepEqual(readByWasm('[[]]', 2)?.shape, [1, 0]);
  t.deepEqual(readByWasm('[ ]', 1)?.shape, [0]);
});

/** A /score body of `count` numbers as a client prints float32 values, with `odd` in place of the one at `at`. */
function tensorBody(count: number, odd: string, at: number): string {
  const numbers = Array.from({ length: count }, (_, i) => String(Math.fround(Math.sin(i) * 0.9)));
  numbers[at] = odd;
  return `{"data": [[${numbers.join(', ')}]]}`;
}

test('a body with numbers the reader does not prove in the middle of its array decodes as JSON.parse decodes it', (t) => {
  for (const odd of ['12345678901234567890123', '1.00000000000000000000001', '4.35e-30', '1e400', '-0', '2.2250738585072011e-308']) {
    const text = tensorBody(3000, odd, 1234);
    const scanned = scanJson(Buffer.from(text), 0, text.length, MAX_JSON_DEPTH) as { data: number[][] };
    t.not(scanned, DECLINED);
    const reference = JSON.parse(text) as { data: number[][] };
    t.true(sameDoubles(Float64Array.from(scanned.data[0]!), reference.data[0]!), odd);
    t.truthy(readByWasm(text, 2), odd);
  }
});

test('more numbers than the reader lists, or denser than it first makes room for: still JSON.parse numbers', (t) => {
  // 5000 numbers of 20 digits: more than the reader lists for Number(); the JS scanner reads that block.
  const long = `[${Array.from({ length: 5000 }, (_, i) => `1234567890123456789${i % 10}`).join(',')}]`;
  t.is(readByWasm(long, 1), undefined);
  t.true(sameDoubles(Float64Array.from(scanJson(Buffer.from(long), 0, long.length, MAX_JSON_DEPTH) as number[]), JSON.parse(long) as number[]));
  // A number every two bytes: more than the room made at first (a number every eight), so the reader makes more.
  const dense = `[${Array.from({ length: 50000 }, (_, i) => i % 10).join(',')}]`;
  const read = readByWasm(dense, 1);
  t.true(sameDoubles(read!.values, JSON.parse(dense) as number[]));
  t.true(sameDoubles(Float64Array.from(scanJson(Buffer.from(dense), 0, dense.length, MAX_JSON_DEPTH) as number[]), JSON.parse(dense) as number[]));
  // A small body after a large one reads only its own bytes.
  t.deepEqual(Array.from(readByWasm('[7]', 1)!.values), [7]);
});

test('a block of float32 numbers comes back as a Float32Array of the same doubles, any other as doubles; facts say what every number is', (t) => {
  const cases: Array<[string, string, { finite: boolean; integers: boolean }]> = [
    // What a client prints from a float32 array: each number a float32 exactly.
    ['[0.10000000149011612, -0.5, 3, -0]', 'Float32Array', { finite: true, integers: false }],
    ['[[1, 2], [-3, 0]]', 'Float32Array', { finite: true, integers: true }],
    // Infinity is a float32 too; the facts tell the tensor checks to look.
    ['[1, 1e400]', 'Float32Array', { finite: false, integers: true }],
    ['[0.1, 1]', 'Float64Array', { finite: true, integers: false }],
    ['[1, 16777217]', 'Float64Array', { finite: true, integers: true }],
    // Deferred (read with Number()) before the facts are taken.
    ['[0.5, 4.35e-30]', 'Float64Array', { finite: true, integers: false }],
    ['[2, -1e400, 0.5]', 'Float32Array', { finite: false, integers: false }],
  ];
  for (const [text, array, facts] of cases) {
    const rank = text.startsWith('[[') ? 2 : 1;
    const read = readByWasm(text, rank)!;
    t.is(read.values.constructor.name, array, text);
    t.true(sameDoubles(read.values, (JSON.parse(text) as unknown[]).flat() as number[]), text);
    t.deepEqual(read.facts, facts, text);
  }
});

test('a body that grew the reader memory past what it keeps does not leave it large: the next smaller body gets a fresh one', (t) => {
  // 12 million one-digit numbers (24 MB of text): values and text need about 120 MB, past the 64 MiB kept.
  const huge = Buffer.concat([Buffer.from('['), Buffer.alloc(23_999_999, '1,'), Buffer.from(']')]);
  numberReader.load(huge);
  t.not(numberReader.block(0, 1), -1);
  t.is(numberReader.count, 12_000_000);
  t.true(numberReader.memoryBytes > 64 * 2 ** 20);
  const small = readByWasm('[[1.5, -2], [3e2, 0.25]]', 2)!;
  t.deepEqual([small.shape, Array.from(small.values)], [[2, 2], [1.5, -2, 300, 0.25]]);
  t.true(numberReader.memoryBytes < 2 ** 20, `${numberReader.memoryBytes} bytes kept`);
});

test('without its .wasm file the loader says to build it', async (t) => {
  // The loader alone in a folder, as after a `tsc` without `npm run build`.
  const folder = mkdtempSync(path.join(tmpdir(), 'number-reader-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const loader = path.join(folder, 'wasm-number-reader.js');
  copyFileSync(fileURLToPath(new URL('../src/pipeline/wasm-number-reader.js', import.meta.url)), loader);
  await t.throwsAsync(import(pathToFileURL(loader).href), { message: /number-reader\.wasm is missing: build with `npm run build`/ });
});
