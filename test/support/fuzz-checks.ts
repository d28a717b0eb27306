/**
 * What every fuzz property (test/fuzz-*.test.ts) checks besides its own: what keeps the contract, the good request
 * that must answer as before, and resident memory once the runs are over.
 */
import test from 'ava';
import sharp from 'sharp';
import { ERRORS, recordedError, statusCodeOf } from '../../src/errors.js';
import { photo, postImage } from './fixtures.js';

// ---- The contract's answers -----------------------------------------------------------------------------------

/**
 * Why an HTTP answer to bad input breaks the contract, or undefined when it keeps it: never 5xx; a refusal
 * carries our body (`{"error": {"code", "message"}}`, on `/v2` `{"error": "<message>"}`) with a code whose
 * status is the one answered.
 */
export function contractBreach(status: number, body: unknown, oip = false): string | undefined {
  if (status >= 500) return `answered ${status}: ${JSON.stringify(body)}`;
  if (status < 400) return undefined;
  if (body === null || typeof body !== 'object' || Object.keys(body).length !== 1) return `${status} without our error body: ${JSON.stringify(body)}`;
  const error = (body as { error?: unknown }).error;
  if (oip) return typeof error === 'string' ? undefined : `${status} without the OIP error body: ${JSON.stringify(body)}`;
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || !(code in ERRORS) || typeof message !== 'string') return `${status} with a body not ours: ${JSON.stringify(body)}`;
  return codeBreach(code, status);
}

/** A code answered with another status than errors.ts gives it, or one that means the module failed. */
export function codeBreach(code: string, status?: number): string | undefined {
  if (!(code in ERRORS)) return `${code} is not one of our codes`;
  const expected = statusCodeOf(recordedError(code, ''));
  if (expected >= 500) return `${code} (${expected}) for bad input`;
  if (status !== undefined && status !== expected) return `${code} answered ${status}, its status is ${expected}`;
  return undefined;
}

/** A response's body as JSON, or its text when it is not JSON. */
export async function bodyOf(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

// ---- Resident memory ------------------------------------------------------------------------------------------

export function residentMiB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

/**
 * How far resident memory may stand above where it started once a file's runs are over. Generous: ONNX Runtime's
 * arenas, sharp's caches and V8's heap settle at their own levels; the findings this guards against grew by
 * gigabytes (issue 12).
 */
export const RESIDENT_GROWTH_MIB = 300;

/** Declares a file's last serial test: resident memory (`now`, this process's by default) near `start()` after the runs. */
export function testResidentMemoryReturns(start: () => number, now: () => number | Promise<number> = residentMiB, whose = 'resident memory'): void {
  test.serial('resident memory returns near its start once the runs are over', async (t) => {
    const [before, after] = [start(), await now()];
    t.log(`${whose}: ${before.toFixed(0)} MiB before the runs, ${after.toFixed(0)} MiB after`);
    t.true(after - before < RESIDENT_GROWTH_MIB, `grew by ${(after - before).toFixed(0)} MiB`);
  });
}

// ---- The good request -----------------------------------------------------------------------------------------

/** A photo with three faces, small enough to score quickly after every case. */
export async function smallPhoto(): Promise<Buffer> {
  return sharp(await photo(1)).resize(480).jpeg().toBuffer();
}

/** The face model's whole answer to `image`, status and body, to compare before and after a case. */
export async function faceAnswer(url: string, image: Buffer): Promise<string> {
  const response = await postImage(`${url}/models/face/score`, image);
  return `${response.status} ${await response.text()}`;
}
