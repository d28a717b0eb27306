/**
 * Four ASCII digits at once: a tensor's numbers are mostly long runs of digits, and on this engine every byte
 * read and compared on its own costs about as much as all the arithmetic of a number. One 32-bit read, a test
 * that all four bytes are digits and two multiply-and-shift steps give their value (SIMD within a register).
 */

const ALL_DIGITS = 0x33333333;

/**
 * The value of the four digits in `word`, read little-endian (its low byte is the first digit), or -1 when
 * any of its bytes is not an ASCII digit.
 */
export function fourDigits(word: number): number {
  // A byte is a digit when its high nibble is 3 and adding 6 does not carry into it (0x3a-0x3f would).
  if (((word & 0xf0f0f0f0) | (((word + 0x06060606) & 0xf0f0f0f0) >>> 4)) !== ALL_DIGITS) return -1;
  let value = word - 0x30303030;
  // Neighbouring digits into pairs (bytes 0 and 2 hold 10·d0 + d1 and 10·d2 + d3), then the pairs into one.
  value = (value * 10 + (value >>> 8)) & 0x00ff00ff;
  return (value * 100 + (value >>> 16)) & 0xffff;
}
