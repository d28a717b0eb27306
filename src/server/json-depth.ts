/**
 * How deep a JSON text nests, counted over its bytes without parsing, so that a body nested 20,000 deep is
 * refused before anything recurses into it (shape inference did, and overflowed the stack: a 500).
 */
import { EdgeInferError } from '../errors.js';

/** Deep enough for any tensor (ONNX models rarely pass rank 8) inside `{"inputs": {"x": {"data": ...}}}`. */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPENERS = new Set([0x5b, 0x7b]);
const CLOSERS = new Set([0x5d, 0x7d]);

/** Throws EI_BAD_REQUEST when arrays and objects in `text` (bytes `start` to `end`) nest deeper than `max`. */
export function checkJsonDepth(text: Buffer, start = 0, end = text.length, max = MAX_JSON_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = start; i < end; i++) {
    const byte = text[i]!;
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) inString = true;
    else if (OPENERS.has(byte)) {
      if (++depth > max) throw new EdgeInferError('EI_BAD_REQUEST', [`The JSON nests deeper than ${max} levels`]);
    } else if (CLOSERS.has(byte)) depth--;
  }
}
