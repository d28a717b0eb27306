/**
 * A decimal number's digits to the double that `JSON.parse` gives for them (the correctly rounded one),
 * without making a string: Clinger's fast path when the digits fit a double exactly, and for 16–19
 * significant digits a candidate whose rounding is then proved with exact residuals (Dekker's products).
 * Whatever it cannot prove it leaves to the caller, which then asks `Number()`.
 *
 * Every double stays unboxed: results are stored into the caller's Float64Array rather than returned, and
 * each helper has one call site so that the optimising compiler inlines it. (A double passed to or returned
 * from a call that is not inlined, or kept in a module variable, is a heap allocation: a 4 MB tensor body
 * then made 5–8 MB of garbage per request.)
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
 * Stores the double nearest to ±(`high` · 10^`lowDigits` + `low`) · 10^`exponent` at `out[index]` and
 * returns true, or returns false (and stores nothing) when this function cannot prove which double that is.
 * @param high the first significant digits as an integer, at most HIGH_DIGITS of them
 * @param low the following `lowDigits` digits as an integer, at most MAX_LOW_DIGITS of them and MAX_DIGITS in all
 * @param sign 1 or -1 (rounding to nearest is symmetric, so the sign is applied to the rounded magnitude)
 */
export function digitsToDouble(high: number, low: number, lowDigits: number, exponent: number, sign: number, out: Float64Array, index: number): boolean {
  const head = high * POW10[lowDigits]!;
  const sum = head + low;
  // Rounding is monotonic, so a sum below 2^53 means the exact one is below it too: this one is exact, and
  // one IEEE operation with an exact power of ten is correctly rounded (Clinger's fast path).
  if (sum < TWO_53) {
    if (sum === 0) out[index] = sign * 0;
    else if (exponent >= 0 && exponent <= 22) out[index] = sign * (sum * POW10[exponent]!);
    else if (exponent < 0 && exponent >= -22) out[index] = sign * (sum / POW10[-exponent]!);
    else return false;
    return true;
  }
  if (exponent >= 0 || exponent < -22) return false;
  // head ≥ low here (head has more digits), so the sum's error is exact in one subtraction (Fast2Sum).
  return provenQuotient(sum, low - (sum - head), POW10[-exponent]!, sign, out, index);
}

/** Stores ±(mh + ml) / divisor, correctly rounded, where mh + ml is an integer below 10^19 held exactly; false when unproven. */
function provenQuotient(mh: number, ml: number, divisor: number, sign: number, out: Float64Array, index: number): boolean {
  let candidate = mh / divisor;
  let left = 0;
  // Most often the first quotient is already the one, and its residual is the proof; else one correction.
  // (A loop, so that residual has one call site.)
  for (let step = 0; ; step++) {
    left = residual(mh, ml, candidate, divisor);
    const next = candidate + left / divisor;
    if (next === candidate || step === 1) break;
    candidate = next;
  }
  bits[0] = candidate;
  const high = words[HIGH]!;
  // At a power of two the ulp below is half the one above; rare enough to leave to Number().
  if ((high & 0xfffff) === 0 && words[1 - HIGH] === 0) return false;
  if (!(Math.abs(left) < (ULP[(high >>> 20) & 0x7ff]! / 2) * divisor * MARGIN)) return false;
  out[index] = sign * candidate;
  return true;
}

const SPLITTER = 2 ** 27 + 1;

/**
 * (mh + ml) − q · divisor, nearly exactly: q · divisor is split exactly into product + error (Dekker, no fused
 * multiply-add needed), and mh − product is exact (Sterbenz).
 */
function residual(mh: number, ml: number, q: number, divisor: number): number {
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
