/**
 * JSON numbers as fuzz inputs for the number readers (src/pipeline/json-scan.ts and its WebAssembly reader):
 * every way JSON writes a number, the ways clients print them, and the texts that are no JSON number.
 */
import fc from 'fast-check';

const digitString = (minLength: number, maxLength: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength, maxLength });

/** Numbers written every way JSON allows: long mantissas, leading and trailing zeros, exponents up to overflow. */
const composedNumber = fc
  .tuple(
    fc.constantFrom('', '-'),
    fc.oneof(fc.constant('0'), fc.tuple(fc.constantFrom(...'123456789'), digitString(0, 24)).map(([first, rest]) => first + rest)),
    fc.option(digitString(1, 25).map((digits) => `.${digits}`), { nil: '' }),
    fc.option(
      fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.oneof(digitString(1, 3), fc.constantFrom('22', '23', '308', '309', '324', '400', '99999999999'))).map((parts) => parts.join('')),
      { nil: '' },
    ),
  )
  .map((parts) => parts.join(''));

/**
 * 16 to 19 significant digits of the exact midpoint between two neighbouring doubles, cut or rounded up: the
 * decimals whose rounding is hardest to get right (and where the scanner must prove it or ask Number()).
 */
export const nearMidpoint = fc
  .tuple(fc.double({ min: 1e-6, max: 1e6, noNaN: true }), fc.integer({ min: 16, max: 19 }), fc.boolean())
  .filter(([value]) => value > 0)
  .map(([value, digits, up]) => {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, value);
    const bits = view.getBigUint64(0);
    const biased = Number(bits >> 52n);
    const mantissa = (bits & ((1n << 52n) - 1n)) | (biased > 0 ? 1n << 52n : 0n);
    // value = mantissa · 2^exponent; the midpoint above it is (2·mantissa + 1) · 2^(exponent − 1).
    const exponent = Math.max(biased, 1) - 1075;
    const scale = 1 - exponent;
    const exact = scale > 0 ? (2n * mantissa + 1n) * 5n ** BigInt(scale) : (2n * mantissa + 1n) << BigInt(-scale);
    const all = exact.toString();
    let kept = BigInt(all.slice(0, digits));
    if (up) kept += 1n;
    return `${kept}e${all.length - digits - Math.max(scale, 0)}`;
  });

/**
 * Digit runs around the reader's edges: integer parts of 1 to 10 digits and fractions of 0 to 22 (read four at
 * a time, the first 8 significant digits in one integer and up to 11 more in another, 19 at most before Number()
 * reads the text), with leading zeros, and exponents near Clinger's bound of ±22.
 */
export const digitRun = fc
  .tuple(
    fc.constantFrom('', '-'),
    fc.oneof(fc.constant('0'), fc.tuple(fc.constantFrom(...'123456789'), digitString(0, 9)).map(([first, rest]) => first + rest)),
    fc.option(fc.tuple(fc.constantFrom('', '0', '000', '0000000'), digitString(0, 22)).map(([zeros, digits]) => `.${zeros}${digits || '0'}`), { nil: '' }),
    fc.option(fc.tuple(fc.constantFrom('e', 'E-', 'e+'), fc.integer({ min: 0, max: 26 })).map(([mark, power]) => `${mark}${power}`), { nil: '' }),
  )
  .map((parts) => parts.join(''));

/** Doubles printed with 15 to 17 significant digits, and where doubles end: subnormals, the largest, 2^53 and past it. */
export const edgeDouble = fc.oneof(
  fc.tuple(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 15, max: 17 })).map(([value, digits]) => value.toPrecision(digits)),
  fc.tuple(fc.double({ min: 1e-6, max: 1e6, noNaN: true }), fc.integer({ min: 15, max: 17 })).map(([value, digits]) => value.toPrecision(digits)),
  fc.double({ min: 0, max: 2.2250738585072014e-308, noNaN: true }).map(String),
  fc.double({ min: 1e300, max: Number.MAX_VALUE, noNaN: true }).map(String),
  fc.bigInt({ min: 2n ** 53n - 16n, max: 2n ** 64n }).map(String),
  fc.tuple(fc.bigInt({ min: 1n, max: 10n ** 19n - 1n }), fc.integer({ min: -25, max: 25 })).map(([digits, power]) => `${digits}e${power}`),
);

/** Numbers as clients print them: doubles, float32 values as doubles (what numpy's tolist() sends), edge cases. */
const printedNumber = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.float({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.double({ min: -1, max: 1, noNaN: true }).map((value) => String(Math.fround(value))),
  nearMidpoint,
  digitRun,
  edgeDouble,
  fc.constantFrom('-0', '-0.0', '0e0', '-0E-5', '1e-400', '-1e400', '9007199254740993', '9007199254740992.5', '2.2250738585072014e-308', '5e-324', '1.7976931348623157e308', '0.30000000000000004', '123456789012345678901234567890'),
);

const notANumber = fc.constantFrom('01', '1.', '.5', '+1', '-', '1e', '1e+', '--1', 'NaN', 'Infinity', '0x10', '- 1', '00', '1.e5');

export const numberText = fc.oneof({ weight: 6, arbitrary: composedNumber }, { weight: 6, arbitrary: printedNumber }, { weight: 1, arbitrary: notANumber });
