/**
 * Reads a JSON request body straight from its bytes, the rectangular arrays of numbers (a tensor's `data`)
 * into one typed array each (see numeric-block.ts), so a 4 MB tensor costs no nested JS arrays, no boxed
 * numbers and no copy out of them. Everything else becomes what `JSON.parse` makes of it. Such an array is read
 * by the WebAssembly number reader (wasm-number-reader.ts); what that reader leaves (no such array, or one it
 * stopped in) is read here in JavaScript, with the same grammar and the same rounding.
 *
 * It only takes what it is sure to read exactly as `JSON.parse` would: on anything else (a syntax error,
 * nesting deeper than allowed, a raw control character in a string, a `__proto__` or `constructor` key) it
 * declines, and the caller runs its reference path (JSON.parse and its checks), which then gives the same
 * answer and the same error as before this scanner existed.
 */
import { Buffer } from 'node:buffer';
import { fourDigits } from './ascii-digits.js';
import { digitsToDouble, HIGH_DIGITS, MAX_DIGITS, MAX_LOW_DIGITS } from './decimal.js';
import { define, defineBlock, NumericBlock } from './numeric-block.js';
import { numberReader } from './wasm-number-reader.js';

/** What scanJson returns when the body is left to the reference path. */
export const DECLINED: unique symbol = Symbol('declined');

const DECLINE = new Error('declined');

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
/** Keys the reference path refuses or treats specially (fastify's prototype-poisoning checks). */
const GUARDED_KEYS = new Set(['__proto__', 'constructor']);

/**
 * The JSON value of `text` bytes `start` to `end`, with nested arrays of numbers inside objects as
 * NumericBlocks; DECLINED when it leaves the text to the reference path.
 * @param maxDepth how deep arrays and objects may nest (deeper: declined, for the reference path to refuse)
 */
export function scanJson(text: Buffer, start: number, end: number, maxDepth: number): unknown {
  try {
    return new Scanner(text.subarray(start, end), maxDepth).document();
  } catch (error) {
    if (error === DECLINE) return DECLINED;
    throw error;
  }
}

class Scanner {
  readonly #text: Buffer;
  readonly #end: number;
  /** The same bytes, for reading four at a time. */
  readonly #view: DataView;
  readonly #maxDepth: number;
  #pos = 0;
  /** The numbers of the arrays being read, blocks after one another. */
  #values: Float64Array;
  #count = 0;
  /** Whether the text is in the WebAssembly number reader's memory yet (put there for the first array). */
  #loaded = false;

  constructor(text: Buffer, maxDepth: number) {
    this.#text = text;
    this.#end = text.length;
    this.#view = new DataView(text.buffer, text.byteOffset, text.length);
    this.#maxDepth = maxDepth;
    // The WebAssembly reader reads most arrays into arrays of their own; these are for what it leaves to #rows.
    this.#values = new Float64Array(1024);
  }

  document(): unknown {
    this.#pos = this.#space(0);
    let value = this.#value(1);
    if (this.#space(this.#pos) !== this.#end) throw DECLINE;
    if (value instanceof NumericBlock) value = value.toNested();
    return value;
  }

  /** The value at the cursor; `depth` is the depth an array or object starting here has. */
  #value(depth: number): unknown {
    const c = this.#text[this.#pos];
    if (c === OPEN_OBJECT) return this.#object(depth);
    if (c === OPEN_ARRAY) return this.#array(depth);
    if (c === QUOTE) return this.#string();
    if (c === MINUS || (c !== undefined && c >= ZERO && c <= NINE)) {
      if (!this.#number()) throw DECLINE;
      return this.#values[--this.#count];
    }
    if (this.#literal('true')) return true;
    if (this.#literal('false')) return false;
    if (this.#literal('null')) return null;
    throw DECLINE;
  }

  #object(depth: number): Record<string, unknown> {
    if (depth > this.#maxDepth) throw DECLINE;
    const object: Record<string, unknown> = {};
    if (this.#opensEmpty(CLOSE_OBJECT)) return object;
    do {
      if (this.#text[this.#pos] !== QUOTE) throw DECLINE;
      const key = this.#string();
      if (GUARDED_KEYS.has(key)) throw DECLINE;
      const p = this.#space(this.#pos);
      if (this.#text[p] !== COLON) throw DECLINE;
      this.#pos = this.#space(p + 1);
      const value = this.#value(depth + 1);
      if (value instanceof NumericBlock) defineBlock(object, key, value);
      else define(object, key, value);
    } while (!this.#afterMember(CLOSE_OBJECT));
    return object;
  }

  /** A rectangular array of numbers as a block when it is one, else the plain array. */
  #array(depth: number): unknown {
    if (depth > this.#maxDepth) throw DECLINE;
    const start = this.#pos;
    const first = this.#count;
    let rank = 0;
    for (let p = start; this.#text[p] === OPEN_ARRAY; p = this.#space(p + 1)) rank++;
    if (depth + rank - 1 > this.#maxDepth) throw DECLINE;
    const block = this.#wasmBlock(rank);
    if (block) return block;
    const shape = new Array<number>(rank).fill(-1);
    if (this.#rows(0, shape)) return new NumericBlock(shape, this.#values.subarray(first, this.#count));
    this.#pos = start;
    this.#count = first;
    return this.#plainArray(depth);
  }

  /**
   * The block at the cursor read by the WebAssembly number reader (wasm-number-reader.ts), the cursor then past
   * it; undefined (the cursor where it was) when that reader leaves it to #rows: it is no block or stopped short.
   */
  #wasmBlock(rank: number): NumericBlock | undefined {
    if (!this.#loaded) {
      numberReader.load(this.#text);
      this.#loaded = true;
    }
    const end = numberReader.block(this.#pos, rank);
    if (end < 0) return undefined;
    this.#pos = end;
    const { values, facts } = numberReader.values();
    return new NumericBlock(numberReader.shape(rank), values, facts);
  }

  /**
   * One array at `level` of a block whose rank is `shape.length`; false as soon as it is not rectangular or
   * holds anything but numbers (the cursor is then anywhere).
   */
  #rows(level: number, shape: number[]): boolean {
    const text = this.#text;
    let p = this.#space(this.#pos + 1);
    let length = 0;
    if (text[p] === CLOSE_ARRAY) p++;
    else {
      const leaf = level === shape.length - 1;
      for (;;) {
        this.#pos = p;
        if (leaf) {
          if (!this.#number()) return false;
        } else if (text[p] !== OPEN_ARRAY || !this.#rows(level + 1, shape)) return false;
        length++;
        p = this.#space(this.#pos);
        const c = text[p];
        if (c === CLOSE_ARRAY) {
          p++;
          break;
        }
        if (c !== COMMA) return false;
        p = this.#space(p + 1);
      }
    }
    this.#pos = p;
    if (shape[level] === -1) shape[level] = length;
    return shape[level] === length;
  }

  #plainArray(depth: number): unknown[] {
    const array: unknown[] = [];
    if (this.#opensEmpty(CLOSE_ARRAY)) return array;
    do {
      const first = this.#count;
      const value = this.#value(depth + 1);
      if (value instanceof NumericBlock) {
        array.push(value.toNested());
        this.#count = first;
      } else array.push(value);
    } while (!this.#afterMember(CLOSE_ARRAY));
    return array;
  }

  /** On an opening bracket: true when `close` follows at once (the cursor then past it), else the cursor is on the first member. */
  #opensEmpty(close: number): boolean {
    this.#pos = this.#space(this.#pos + 1);
    if (this.#text[this.#pos] !== close) return false;
    this.#pos++;
    return true;
  }

  /** After a member: true when `close` ends the container (the cursor then past it), false after a comma (the cursor on the next member). */
  #afterMember(close: number): boolean {
    const p = this.#space(this.#pos);
    const c = this.#text[p];
    if (c === close) {
      this.#pos = p + 1;
      return true;
    }
    if (c !== COMMA) throw DECLINE;
    this.#pos = this.#space(p + 1);
    return false;
  }

  #grow(): void {
    const values = new Float64Array(this.#values.length * 2);
    values.set(this.#values);
    this.#values = values;
  }

  /** The string at the cursor (on its opening quote). */
  #string(): string {
    const text = this.#text;
    const start = this.#pos + 1;
    let escaped = false;
    let p = start;
    for (;;) {
      if (p >= this.#end) throw DECLINE;
      const c = text[p]!;
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        escaped = true;
        p += 2;
        continue;
      }
      if (c < 0x20) throw DECLINE;
      p++;
    }
    this.#pos = p + 1;
    if (!escaped) return text.toString('utf8', start, p);
    try {
      return JSON.parse(text.toString('utf8', start - 1, p + 1)) as string;
    } catch {
      throw DECLINE;
    }
  }

  /**
   * Appends the number at the cursor to the values, moving past it; false (cursor anywhere) when no JSON
   * number starts there. (Appending rather than returning it: this function is too big to inline, and a
   * double returned from a call is a heap allocation; see decimal.ts.)
   *
   * The significant digits go into two integers, `high` (the first HIGH_DIGITS) and `low` (the rest), as
   * digitsToDouble takes them; runs of digits are read four at a time (ascii-digits.ts). Past MAX_DIGITS, Number()
   * reads the text.
   */
  #number(): boolean {
    const text = this.#text;
    const view = this.#view;
    const end = this.#end;
    const start = this.#pos;
    let p = start;
    // Past the end reads as 0, which is no digit and no sign: every loop stops there.
    let c = p < end ? text[p]! : 0;
    const negative = c === MINUS;
    if (negative) c = ++p < end ? text[p]! : 0;
    let high = 0;
    let highDigits = 0;
    let low = 0;
    let lowDigits = 0;
    let exponent = 0;
    // A leading zero is the whole integer part ("01" is no JSON number).
    if (c === ZERO) {
      c = ++p < end ? text[p]! : 0;
      if (c >= ZERO && c <= NINE) return false;
    } else if (c < ZERO || c > NINE) return false;
    // The integer part's digits, then (after a dot) the fraction's, which start at `fraction`.
    let fraction = -1;
    for (;;) {
      for (let four = 0; p + 4 <= end && (four = fourDigits(view.getInt32(p, true))) >= 0; p += 4) {
        if (lowDigits === 0 && highDigits <= HIGH_DIGITS - 4) {
          high = high * 1e4 + four;
          highDigits += 4;
        } else {
          low = low * 1e4 + four;
          lowDigits += 4;
        }
      }
      for (c = p < end ? text[p]! : 0; c >= ZERO && c <= NINE; c = ++p < end ? text[p]! : 0) {
        if (lowDigits === 0 && highDigits < HIGH_DIGITS) {
          high = high * 10 + (c - ZERO);
          highDigits++;
        } else {
          low = low * 10 + (c - ZERO);
          lowDigits++;
        }
      }
      if (fraction !== -1 || c !== DOT) break;
      c = ++p < end ? text[p]! : 0;
      if (c < ZERO || c > NINE) return false;
      fraction = p;
      // Zeros before the first significant digit only move the exponent.
      if (highDigits === 0) while (c === ZERO) c = ++p < end ? text[p]! : 0;
    }
    if (fraction !== -1) exponent = fraction - p;
    if (c === 0x65 || c === 0x45) {
      c = ++p < end ? text[p]! : 0;
      let exponentSign = 1;
      if (c === 0x2b || c === MINUS) {
        exponentSign = c === MINUS ? -1 : 1;
        c = ++p < end ? text[p]! : 0;
      }
      if (c < ZERO || c > NINE) return false;
      let written = 0;
      do {
        // Past a million the value is 0 or Infinity whatever the digits; Number() below says which.
        if (written < 1e6) written = written * 10 + (c - ZERO);
        c = ++p < end ? text[p]! : 0;
      } while (c >= ZERO && c <= NINE);
      exponent += exponentSign * written;
    }
    this.#pos = p;
    if (this.#count === this.#values.length) this.#grow();
    const sign = negative ? -1 : 1;
    const proven = highDigits + lowDigits <= MAX_DIGITS && lowDigits <= MAX_LOW_DIGITS && digitsToDouble(high, low, lowDigits, exponent, sign, this.#values, this.#count);
    if (!proven) {
      this.#values[this.#count] = Number(text.toString('latin1', start, p));
    }
    this.#count++;
    return true;
  }

  #literal(word: string): boolean {
    const p = this.#pos;
    for (let i = 0; i < word.length; i++) if (this.#text[p + i] !== word.charCodeAt(i)) return false;
    this.#pos = p + word.length;
    return true;
  }

  #space(from: number): number {
    let p = from;
    for (let c = this.#text[p]; c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = this.#text[++p]);
    return p;
  }
}
