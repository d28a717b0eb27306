/**
 * The JSON body scanner's hot loop in WebAssembly (AssemblyScript; built by `npm run build` into
 * dist/src/pipeline/number-reader.wasm, loaded by src/pipeline/wasm-number-reader.ts): one rectangular nested
 * array of JSON numbers read from the body's bytes into doubles. In JavaScript every byte read and compared on
 * its own costs a few nanoseconds and a 4 MB tensor body is 4 million of them; here a byte is a byte, a
 * mantissa is one u64, digits are read eight at a time, and nothing crosses into JS per number.
 *
 * It rounds exactly as src/pipeline/decimal.ts does (the same IEEE operations, so the same proof and the same
 * doubles): Clinger's fast path when the digits fit 2^53 and |exponent| ≤ 22, Dekker's exact residuals for
 * larger mantissas of up to 19 digits divided by 10^1…10^22. A number it cannot prove (20 digits or more, an
 * exponent out of those ranges, a quotient too near a rounding boundary) it does not guess: it lists it, and
 * the caller reads that number's text with Number(). Anything that is not such an array (a string, an object,
 * a literal, a ragged row, a syntax error) makes it answer NOT_A_BLOCK, and the caller's own reader takes over.
 *
 * Memory: the caller puts the body's bytes at `input()`, followed by PADDING zero bytes (a zero is neither a
 * digit, a sign nor a space, so every loop stops there, and no read of up to 24 bytes from a position in the
 * body leaves the padding); positions are addresses in this memory.
 */

/** readBlock's answers other than a position. */
export const NOT_A_BLOCK: i32 = -1;
export const VALUES_FULL: i32 = -2;
export const DEFERRED_FULL: i32 = -3;

export const MAX_RANK: i32 = 128;
export const DEFERRED_CAPACITY: i32 = 4096;
export const PADDING: i32 = 32;

/** The length of each level of the block read (i32 each). */
export const SHAPE: usize = memory.data(MAX_RANK * 4);
/** The length of the array open at each level while reading. */
const LENGTHS: usize = memory.data(MAX_RANK * 4);
/** The indices of the values this reader did not prove (i32 each); their slot holds the number's position. */
export const DEFERRED: usize = memory.data(DEFERRED_CAPACITY * 4);

/** How many values and deferred values the last readBlock wrote. */
export let valueCount: i32 = 0;
export let deferredCount: i32 = 0;

/** Where the caller puts the body's bytes: past this module's own data. */
export function input(): usize {
  return (__heap_base + 15) & ~15;
}

const MINUS: u32 = 0x2d;
const DOT: u32 = 0x2e;
const ZERO: u32 = 0x30;
const COMMA: u32 = 0x2c;
const OPEN: u32 = 0x5b;
const CLOSE: u32 = 0x5d;

/** 10^0 … 10^22, each exact in a double. */
const POW10: usize = memory.data<f64>([1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]);
/** 10^0 … 10^19 as integers. */
const POW10_INTEGER: usize = memory.data<u64>([
  1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000, 10000000000, 100000000000, 1000000000000,
  10000000000000, 100000000000000, 1000000000000000, 10000000000000000, 100000000000000000, 1000000000000000000,
  10000000000000000000,
]);
const TWO_53: u64 = 1 << 53;
const MAX_DIGITS: i32 = 19;
/** A residual this close to half an ulp is not trusted to decide the rounding (decimal.ts's margin). */
const MARGIN: f64 = 1 - 1.0 / f64(1 << 20);
const SPLITTER: f64 = f64(1 << 27) + 1;

@inline function isDigit(c: u32): bool {
  return c - ZERO < 10;
}

/** JSON's whitespace (space, line feed, carriage return, tab) as bits by byte value. */
const SPACES: u64 = (<u64>1 << 0x20) | (1 << 0x0a) | (1 << 0x0d) | (1 << 0x09);

/** Past JSON whitespace from `p`. */
@inline function space(p: usize): usize {
  let c = <u32>load<u8>(p);
  while (c <= 0x20 && ((SPACES >> c) & 1) != 0) c = load<u8>(++p);
  return p;
}

/**
 * The rectangular array of `rank` levels of numbers whose opening bracket is at `pos`: its shape at SHAPE, its
 * values (row after row) from `values` on, at most `room` of them; the deferred ones at DEFERRED. Answers the
 * position after its closing bracket, or NOT_A_BLOCK, VALUES_FULL or DEFERRED_FULL (then nothing is kept).
 * Positions are addresses in this memory; the body's bytes are followed by the padding.
 */
export function readBlock(pos: usize, rank: i32, values: usize, room: i32): i32 {
  if (rank < 1 || rank > MAX_RANK) return NOT_A_BLOCK;
  const leaf = rank - 1;
  for (let level = 0; level < rank; level++) store<i32>(SHAPE + (<usize>level << 2), -1);
  let count = 0;
  let deferred = 0;
  let level = 0;
  let p = pos;
  // At the top of this loop `p` is on the opening bracket of an array at `level`.
  while (true) {
    p = space(p + 1);
    let length = 0;
    if (load<u8>(p) == CLOSE) p++;
    else if (level < leaf) {
      if (load<u8>(p) != OPEN) return NOT_A_BLOCK;
      store<i32>(LENGTHS + (<usize>level << 2), 0);
      level++;
      continue;
    } else {
      // A row of numbers, to its closing bracket.
      while (true) {
        if (count == room) return VALUES_FULL;
        const slot = values + (<usize>count << 3);
        const end = number(p, slot);
        if (end == 0) return NOT_A_BLOCK;
        const value = load<f64>(slot);
        if (value != value) {
          // Not proven: the caller reads this one with Number(), from its position left in the slot.
          if (deferred == DEFERRED_CAPACITY) return DEFERRED_FULL;
          store<i32>(DEFERRED + (<usize>deferred << 2), count);
          deferred++;
          store<f64>(slot, <f64>p);
        }
        count++;
        length++;
        p = space(end);
        const c = load<u8>(p);
        if (c == CLOSE) {
          p++;
          break;
        }
        if (c != COMMA) return NOT_A_BLOCK;
        p = space(p + 1);
      }
    }
    // The array at `level` is closed; `p` is past it. Check its length, then go on in the array around it.
    while (true) {
      const at = SHAPE + (<usize>level << 2);
      const expected = load<i32>(at);
      if (expected == -1) store<i32>(at, length);
      else if (expected != length) return NOT_A_BLOCK;
      if (level == 0) {
        valueCount = count;
        deferredCount = deferred;
        return <i32>p;
      }
      level--;
      const lengthAt = LENGTHS + (<usize>level << 2);
      length = load<i32>(lengthAt) + 1;
      store<i32>(lengthAt, length);
      p = space(p);
      const c = load<u8>(p);
      if (c == CLOSE) {
        p++;
        continue;
      }
      if (c != COMMA) return NOT_A_BLOCK;
      p = space(p + 1);
      if (load<u8>(p) != OPEN) return NOT_A_BLOCK;
      level++;
      break;
    }
  }
}

/** narrow's answer: bits for what every value of the block is. */
export const FLOAT32: i32 = 1;
export const INTEGERS: i32 = 2;
export const FINITE: i32 = 4;

/**
 * What the `count` doubles from `values` all are (the block readBlock read, once the caller has put the
 * deferred ones in their slots): each a float32 exactly, an integer, finite. When each is a float32 they are
 * rewritten as float32s from `values` on, in place (slot i's four bytes lie below slot i's eight until i is
 * read), so the caller copies out half the bytes and a float32 tensor takes them as they are: the numbers a
 * client prints from a float32 array are such doubles. The caller's checks skip what these bits prove.
 */
export function narrow(values: usize, count: i32): i32 {
  let float32 = FLOAT32;
  let integers = INTEGERS;
  let finite = FINITE;
  for (let i = 0; i < count; i++) {
    const value = load<f64>(values + (<usize>i << 3));
    float32 &= select<i32>(FLOAT32, 0, <f64>(<f32>value) == value);
    integers &= select<i32>(INTEGERS, 0, Math.trunc(value) == value);
    finite &= select<i32>(FINITE, 0, value - value == 0);
  }
  if (float32 != 0) for (let i = 0; i < count; i++) store<f32>(values + (<usize>i << 2), <f32>load<f64>(values + (<usize>i << 3)));
  return float32 | integers | finite;
}

/** How many of the eight bytes of `word` (little-endian) are digits before the first that is none. */
@inline function leadingDigits(word: u64): i32 {
  // A byte is a digit when its high nibble is 3 and adding 6 does not carry into it (src/pipeline/ascii-digits.ts).
  const notDigits = ((word & 0xf0f0f0f0f0f0f0f0) | (((word + 0x0606060606060606) & 0xf0f0f0f0f0f0f0f0) >> 4)) ^ 0x3333333333333333;
  return <i32>(ctz(notDigits) >> 3);
}

/** The value of the first `count` (0 to 8) bytes of `word`, digits, read little-endian (the first the highest). */
@inline function digitsValue(word: u64, count: i32): u64 {
  // Those digits moved to the high bytes, zeros below them: eight digits whose value is theirs.
  let value = select<u64>((word - 0x3030303030303030) << (64 - (<u64>count << 3)), 0, count != 0);
  value = (value * 10 + (value >> 8)) & 0x00ff00ff00ff00ff;
  value = (value * 100 + (value >> 16)) & 0x0000ffff0000ffff;
  return (value * 10000 + (value >> 32)) & 0xffffffff;
}

/**
 * How many digits follow from `p`. The first 24 bytes are read and tested at once, not one group after the
 * other: the next number's position then waits on one memory read, not three (the processor reads the numbers
 * of a row side by side only as far as the positions let it).
 */
@inline function runLength(p: usize): i32 {
  const first = leadingDigits(load<u64>(p));
  const second = leadingDigits(load<u64>(p, 8));
  const third = leadingDigits(load<u64>(p, 16));
  let length = first + select<i32>(second + select<i32>(third, 0, second == 8), 0, first == 8);
  if (length == 24) {
    let more = 0;
    do {
      more = leadingDigits(load<u64>(p + length));
      length += more;
    } while (more == 8);
  }
  return length;
}

/** The value of the `count` (at most MAX_DIGITS) digits from `p`, from three groups read side by side. */
@inline function runValue(p: usize, count: i32): u64 {
  const second = <i32>min(max(count - 8, 0), 8);
  const third = max(count - 16, 0);
  const head = digitsValue(load<u64>(p), <i32>min(count, 8)) * load<u64>(POW10_INTEGER + (<usize>second << 3)) + digitsValue(load<u64>(p, 8), second);
  return head * load<u64>(POW10_INTEGER + (<usize>third << 3)) + digitsValue(load<u64>(p, 16), third);
}

/**
 * Reads the JSON number at `p` and stores its value at `slot`, NaN when not proven; answers the position after
 * it, or 0 when no JSON number starts there. Written to branch little: a tensor's numbers differ in sign and in
 * how many digits they have at random, and each mispredicted branch costs as much as reading eight digits.
 */
@inline function number(p: usize, slot: usize): usize {
  const negative = load<u8>(p) == MINUS;
  p += <usize>negative;
  let c = <u32>load<u8>(p);
  if (!isDigit(c)) return 0;
  // The integer part; a leading zero is all of it ("01" is no JSON number) and no significant digit.
  let integerDigits = 0;
  if (c == ZERO) {
    p++;
    if (isDigit(load<u8>(p))) return 0;
  } else integerDigits = runLength(p);
  const integer = p;
  p += integerDigits;
  // The fraction: its significant digits start at `fraction`, past the zeros that only move the exponent (those
  // before the first significant digit of the number).
  let fraction = p;
  let fractionDigits = 0;
  let exponent = 0;
  c = load<u8>(p);
  if (c == DOT) {
    p++;
    if (!isDigit(load<u8>(p))) return 0;
    if (integerDigits == 0) {
      let zeros = 0;
      do {
        zeros = <i32>(ctz(load<u64>(p) ^ 0x3030303030303030) >> 3);
        p += zeros;
      } while (zeros == 8);
    }
    fraction = p;
    fractionDigits = runLength(p);
    p += fractionDigits;
    // Less the count of the fraction's digits, the zeros included: the dot is at integer + integerDigits.
    exponent = <i32>(integer + integerDigits + 1) - <i32>p;
    c = load<u8>(p);
  }
  if ((c | 0x20) == 0x65) {
    c = load<u8>(++p);
    let exponentSign = 1;
    if (c == 0x2b || c == MINUS) {
      exponentSign = c == MINUS ? -1 : 1;
      c = load<u8>(++p);
    }
    if (!isDigit(c)) return 0;
    let written = 0;
    do {
      // Past a million the value is 0 or Infinity whatever the digits; Number() says which.
      if (written < 1000000) written = written * 10 + <i32>(c - ZERO);
      c = load<u8>(++p);
    } while (isDigit(c));
    exponent += exponentSign * written;
  }
  const digits = integerDigits + fractionDigits;
  let value: f64 = NaN;
  if (digits <= MAX_DIGITS) {
    // (Most tensor numbers have no integer digits: "0.…"; their integer part costs no work then.)
    const integerValue = integerDigits == 0 ? 0 : runValue(integer, integerDigits) * load<u64>(POW10_INTEGER + (<usize>fractionDigits << 3));
    const mantissa = integerValue + runValue(fraction, fractionDigits);
    value = toDouble(mantissa, exponent);
  }
  store<f64>(slot, negative ? -value : value);
  return p;
}

/** The magnitude mantissa · 10^exponent, correctly rounded, or NaN when not proven (decimal.ts's digitsToDouble). */
@inline function toDouble(mantissa: u64, exponent: i32): f64 {
  if (mantissa == 0) return 0;
  if (mantissa < TWO_53) {
    // Exact, and one IEEE operation with an exact power of ten is correctly rounded (Clinger).
    const exact = <f64>mantissa;
    if (exponent >= 0 && exponent <= 22) return exact * load<f64>(POW10 + (<usize>exponent << 3));
    if (exponent < 0 && exponent >= -22) return exact / load<f64>(POW10 + (<usize>-exponent << 3));
    return NaN;
  }
  if (exponent >= 0 || exponent < -22) return NaN;
  // The mantissa as a rounded double and its exact error (below 2^10, exact too).
  const high = <f64>mantissa;
  const low = <f64>(<i64>(mantissa - <u64>high));
  return provenQuotient(high, low, load<f64>(POW10 + (<usize>-exponent << 3)));
}

/** (mh + ml) / divisor correctly rounded, or NaN when the residual does not prove it (decimal.ts's provenQuotient). */
@inline function provenQuotient(mh: f64, ml: f64, divisor: f64): f64 {
  let candidate = mh / divisor;
  let left = residual(mh, ml, candidate, divisor);
  const next = candidate + left / divisor;
  if (next != candidate) {
    candidate = next;
    left = residual(mh, ml, candidate, divisor);
  }
  const bits = reinterpret<u64>(candidate);
  // At a power of two the ulp below is half the one above; rare enough to leave to Number().
  if ((bits & 0xfffffffffffff) == 0) return NaN;
  // Half an ulp of a double whose biased exponent is e is 2^(e − 1076): the double with biased exponent e − 53.
  const halfUlp = reinterpret<f64>(((bits >> 52) - 53) << 52);
  if (!(Math.abs(left) < halfUlp * divisor * MARGIN)) return NaN;
  return candidate;
}

/** (mh + ml) − q · divisor nearly exactly: q · divisor split into product + error (Dekker), mh − product exact (Sterbenz). */
@inline function residual(mh: f64, ml: f64, q: f64, divisor: f64): f64 {
  const product = q * divisor;
  let t = SPLITTER * q;
  const qHigh = t - (t - q);
  const qLow = q - qHigh;
  t = SPLITTER * divisor;
  const dHigh = t - (t - divisor);
  const dLow = divisor - dHigh;
  const error = qHigh * dHigh - product + qHigh * dLow + qLow * dHigh + qLow * dLow;
  return mh - product + (ml - error);
}
