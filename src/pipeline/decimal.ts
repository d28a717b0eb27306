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
 * The double nearest to (`high` · 10^`lowDigits` + `low`) · 10^`exponent`, or NaN when this function cannot
 * prove which double that is.
 * @param high the first significant digits as an integer, at most 15 of them (exact)
 * @param low the following `lowDigits` digits (0 to 4 of them) as an integer
 */
export function decimalToDouble(high: number, low: number, lowDigits: number, exponent: number): number {
  // Rounding is monotonic, so a result below 2^53 means the exact one is below it too: this one is exact.
  const rounded = high * POW10[lowDigits]! + low;
  if (rounded < TWO_53) return clinger(rounded, exponent);
  if (exponent >= 0 || exponent < -22) return NaN;
  const product = twoProduct(high, POW10[lowDigits]!);
  // Both parts are integers, the second below 2^15: their sum is exact, and twoSum splits it exactly.
  const mantissa = twoSum(product, error + low);
  return provenQuotient(mantissa, error, POW10[-exponent]!);
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
/** The low part of the last twoProduct or twoSum (a module variable: no pair allocated per number). */
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

/** a + b as an unevaluated sum of two doubles, exactly (Knuth); returns the high part. */
function twoSum(a: number, b: number): number {
  const sum = a + b;
  const bVirtual = sum - a;
  error = a - (sum - bVirtual) + (b - bVirtual);
  return sum;
}
