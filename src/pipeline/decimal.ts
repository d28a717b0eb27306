/**
 * A decimal number's digits to the double that `JSON.parse` gives for them (the correctly rounded one),
 * without making a string: Clinger's fast path when the digits fit a double exactly, and for 16–19
 * significant digits a candidate whose rounding is then proved with exact residuals (Dekker's products).
 * Whatever it cannot prove it leaves to the caller (NaN), which then asks `Number()`.
 */

/** 10^0 … 10^22: every one is exact in a double. */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));
const TWO_53 = 2 ** 53;
/** A residual this close to half an ulp is not trusted to decide the rounding. */
const MARGIN = 1 - 2 ** -20;

/** 2^(e − 1075): the ulp of a normal double whose biased exponent is e (a table: Math.pow is a slow call). */
const ULP = Float64Array.from({ length: 2048 }, (_, e) => 2 ** (e - 1075));
const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/**
 * The most digits `high` may hold and the most in all: then high · 10^lowDigits is below
 * 10^h · 5^r · 2^r = 2^h · 5^(h+r) · 2^r ≤ 2^8 · 5^19 · 2^r < 2^53 · 2^r, exact in a double.
 */
export const HIGH_DIGITS = 8;
export const MAX_DIGITS = 19;
/** The most digits `low` may hold and be exact (10^15 < 2^53). */
export const MAX_LOW_DIGITS = 15;

/**
 * The double nearest to (`high` · 10^`lowDigits` + `low`) · 10^`exponent`, or NaN when this function cannot
 * prove which double that is.
 * @param high the first significant digits as an integer, at most HIGH_DIGITS of them
 * @param low the following `lowDigits` digits as an integer, at most MAX_LOW_DIGITS of them and MAX_DIGITS in all
 */
export function digitsToDouble(high: number, low: number, lowDigits: number, exponent: number): number {
  const head = high * POW10[lowDigits]!;
  const sum = head + low;
  // Rounding is monotonic, so a sum below 2^53 means the exact one is below it too: this one is exact.
  if (sum < TWO_53) return clinger(sum, exponent);
  if (exponent >= 0 || exponent < -22) return NaN;
  // head ≥ low here (head has more digits), so the sum's error is exact in one subtraction (Fast2Sum).
  return provenQuotient(sum, low - (sum - head), POW10[-exponent]!);
}

/** Exact mantissa times an exact power of ten: one IEEE operation, so correctly rounded. */
function clinger(mantissa: number, exponent: number): number {
  if (mantissa === 0) return 0;
  if (exponent >= 0) return exponent <= 22 ? mantissa * POW10[exponent]! : NaN;
  return exponent >= -22 ? mantissa / POW10[-exponent]! : NaN;
}

/** (mh + ml) / divisor, correctly rounded, where mh + ml is an integer below 10^19 held exactly. */
function provenQuotient(mh: number, ml: number, divisor: number): number {
  const first = mh / divisor;
  const firstLeft = residual(mh, ml, first, divisor);
  const candidate = first + firstLeft / divisor;
  // Most often the first quotient is already the one, and its residual is the proof.
  const left = candidate === first ? firstLeft : residual(mh, ml, candidate, divisor);
  bits[0] = candidate;
  const high = words[HIGH]!;
  // At a power of two the ulp below is half the one above; rare enough to leave to Number().
  if ((high & 0xfffff) === 0 && words[1 - HIGH] === 0) return NaN;
  return Math.abs(left) < (ULP[(high >>> 20) & 0x7ff]! / 2) * divisor * MARGIN ? candidate : NaN;
}

/** (mh + ml) − q · divisor, nearly exactly: the product is exact, mh − its high part is exact (Sterbenz). */
function residual(mh: number, ml: number, q: number, divisor: number): number {
  const product = twoProduct(q, divisor);
  return mh - product + (ml - error);
}

const SPLITTER = 2 ** 27 + 1;
/** The low part of the last twoProduct (a module variable: no pair allocated per number). */
let error = 0;

/** a · b as an unevaluated sum of two doubles, exactly (Dekker, no fused multiply-add needed); returns the high part. */
function twoProduct(a: number, b: number): number {
  const product = a * b;
  let t = SPLITTER * a;
  const aHigh = t - (t - a);
  const aLow = a - aHigh;
  t = SPLITTER * b;
  const bHigh = t - (t - b);
  const bLow = b - bHigh;
  error = aHigh * bHigh - product + aHigh * bLow + aLow * bHigh + aLow * bLow;
  return product;
}
