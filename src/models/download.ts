/**
 * Downloads a model over http(s) into the store, hashing while it streams. The bytes land in a `.partial`
 * file and are renamed into place only when the sha256 matches: nothing is used before its hash is checked.
 *
 * A cut or stalled transfer is retried with exponential backoff and jitter; when the server answers ranges,
 * the retry resumes where the last one stopped. Two slots that name the same content share one download.
 *
 * The store's disk is guarded: a download is capped in size (the slot's own `size`, else a module-wide cap),
 * refused before a byte is written when its announced length does not fit the free space, and a write the disk
 * refuses (ENOSPC, a read-only volume) fails the version with a clear code instead of the process.
 */
import { mkdir, rename, rm, stat, statfs } from 'node:fs/promises';
import type { ClientRequest, IncomingMessage } from 'node:http';
import path from 'node:path';
import { backoffDelay } from '../backoff.js';
import { EdgeInferError, isEdgeInferError, messageOf } from '../errors.js';
import { redactUri } from '../redact.js';
import { diskError, writingTo } from './disk-errors.js';
import { getFollowingRedirects, type NetworkSettings } from './http-agent.js';
import { PartialWriter } from './partial-writer.js';

export interface DownloadOptions {
  /** Attempts after the first. */
  retries?: number;
  /** The first backoff; each retry doubles it, up to `maxBackoffMs` (the module's one schedule, src/backoff.ts). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A transfer with no byte for this long counts as cut. */
  stallMs?: number;
  /** Called with 0.1, 0.2, ... 1 as the download crosses each tenth (when the size is known). */
  onProgress?: (fraction: number) => void;
  /** Proxy (from the environment) and CA bundle. */
  network?: NetworkSettings;
  /** The most bytes the content may have, and where that number comes from (said in the error). */
  limit?: DownloadLimit;
}

export interface DownloadLimit {
  bytes: number;
  /** `the slot's "size"` or the setting's name. */
  from: string;
}

/** The module-wide cap when the slot names no size (setting --max-download). */
export const DEFAULT_MAX_DOWNLOAD_BYTES = 4 * 1024 ** 3;

const DEFAULTS = {
  retries: 5,
  backoffMs: 1000,
  maxBackoffMs: 60_000,
  stallMs: 30_000,
  limit: { bytes: DEFAULT_MAX_DOWNLOAD_BYTES, from: 'setting --max-download' } as DownloadLimit,
};

/** Downloads under way, by sha256: content is fetched once however many slots (and file names) ask for it. */
const inFlight = new Map<string, Promise<string>>();

/**
 * Downloads `uri` to `targetFile`, or, when the same content is already on its way, waits for that download.
 * Resolves with the file the content landed in (the other download's, in that case).
 */
export function downloadVerified(uri: string, expectedSha256: string, targetFile: string, options: DownloadOptions = {}): Promise<string> {
  const sha256 = expectedSha256.toLowerCase();
  const running = inFlight.get(sha256);
  if (running) return running;
  const download = downloadWithRetries(uri, sha256, targetFile, { ...DEFAULTS, ...options })
    .then(() => targetFile)
    .finally(() => inFlight.delete(sha256));
  inFlight.set(sha256, download);
  return download;
}

/** Why an attempt ended: worth another try, or final. */
class Attempt extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
  ) {
    super(message);
  }
}

async function downloadWithRetries(uri: string, sha256: string, targetFile: string, options: DownloadOptions & typeof DEFAULTS): Promise<void> {
  const shown = redactUri(uri);
  const partial = `${targetFile}.partial`;
  const folder = path.dirname(targetFile);
  await writingTo(folder, shown, () => mkdir(folder, { recursive: true }));
  const progress = progressReporter(options.onProgress);
  let lastError = '';
  for (let attempt = 0; attempt <= options.retries; attempt++) {
    if (attempt > 0) await sleep(backoffDelay(attempt - 1, { firstMs: options.backoffMs, mostMs: options.maxBackoffMs }));
    try {
      const actual = await transfer(uri, partial, shown, options, progress);
      if (actual !== sha256) throw new EdgeInferError('EI_HASH_MISMATCH', [shown, actual, sha256]);
      await rename(partial, targetFile);
      return;
    } catch (error) {
      if (isEdgeInferError(error) || !(error instanceof Attempt) || !error.retry) {
        // Final: what was written goes (on a full disk, it is what fills it).
        await rm(partial, { force: true }).catch(() => undefined);
        throw isEdgeInferError(error) ? error : new EdgeInferError('EI_DOWNLOAD_FAILED', [shown, messageOf(error)], error);
      }
      lastError = error.message;
    }
  }
  await rm(partial, { force: true });
  throw new EdgeInferError('EI_DOWNLOAD_FAILED', [shown, `${lastError} (gave up after ${options.retries + 1} attempts)`]);
}

/**
 * One request: resumes from the partial file's length when the server answers 206 to a Range request.
 * Returns the sha256 of the whole file, hashed as the bytes pass (the kept part is hashed first on resume).
 *
 * The body is taken from Node's own response as the socket delivers it and handed to a writer thread that hashes
 * and writes it (partial-writer.ts): no fetch layer, no promise or copy per chunk, and sha256 off this thread
 * (together what held downloads to a third of a plain read; README, "Performance").
 */
async function transfer(
  uri: string,
  partial: string,
  shown: string,
  options: { stallMs: number; network?: NetworkSettings; limit: DownloadLimit },
  progress: (done: number, total: number) => void,
): Promise<string> {
  const { stallMs, network, limit } = options;
  const have = await stat(partial).then(
    (s) => s.size,
    () => 0,
  );
  let current: ClientRequest | undefined;
  let stalled = false;
  const watchStall = () => setTimeout(() => ((stalled = true), current?.destroy()), stallMs);
  let timer = watchStall();
  let response: IncomingMessage;
  try {
    response = await getFollowingRedirects(uri, have > 0 ? { range: `bytes=${have}-` } : {}, network, (request) => (current = request));
  } catch (error) {
    clearTimeout(timer);
    throw new Attempt(stalled ? `no answer for ${stallMs} ms` : messageOf(error), true);
  }
  try {
    const status = response.statusCode ?? 0;
    const resumed = status === 206;
    if (status < 200 || status > 299) {
      response.destroy();
      // Server errors and throttling pass; a missing file or a refusal does not.
      const retry = status >= 500 || status === 408 || status === 429;
      throw new Attempt(`the server answered ${status} ${response.statusMessage ?? ''}`.trimEnd(), retry);
    }
    const start = resumed ? have : 0;
    const length = Number(response.headers['content-length'] ?? NaN);
    const total = start + length;
    const tooLarge = () => new EdgeInferError('EI_DOWNLOAD_TOO_LARGE', [shown, limit.bytes, limit.from]);
    if (total > limit.bytes) throw tooLarge();
    await checkFreeSpace(partial, shown, Number.isFinite(length) ? length : 0);
    const file = new PartialWriter(partial, resumed);
    let received = 0;
    const failure = await new Promise<unknown>((settle) => {
      const stop = (error: unknown) => {
        settle(error);
        response.destroy();
      };
      // While the writer catches up (hashing a kept part, a slow disk) the sender is not stalled: the watch stops.
      file.onDrain = () => (file.error ? stop(file.error) : ((timer = watchStall()), response.resume()));
      response.on('data', (chunk: Buffer) => {
        timer.refresh();
        received += chunk.length;
        if (start + received > limit.bytes) return stop(tooLarge());
        if (!file.write(chunk)) {
          if (file.error) return stop(file.error);
          clearTimeout(timer);
          response.pause();
        }
        progress(start + received, total);
      });
      response.once('end', () => settle(undefined));
      response.once('error', stop);
      // A socket that closes before the body's end (a cut, a stall's destroy) ends the response without 'end'.
      response.once('close', () => settle(response.complete ? undefined : new Error('the connection closed')));
    });
    // A refused write may surface only when the file is flushed; it outranks what the network did meanwhile.
    const written = await file.close();
    if ('error' in written) throw diskError(written.error, path.dirname(partial), shown) ?? new Attempt(`writing ${path.basename(partial)} failed: ${messageOf(written.error)}`, false);
    if (isEdgeInferError(failure)) throw failure;
    if (failure !== undefined) throw new Attempt(stalled ? `no data for ${stallMs} ms` : `the transfer was cut: ${messageOf(failure)}`, true);
    if (Number.isFinite(length) && received !== length) throw new Attempt(`the transfer was cut at ${start + received} of ${total} bytes`, true);
    return written.sha256;
  } finally {
    clearTimeout(timer);
    if (!response.complete) response.destroy(); // a refusal before the body was read leaves no open socket
  }
}

/**
 * Refuses a download whose announced length does not fit the store's free space, before a byte is written
 * (the other versions, state.json and the unpacked copy need room too). A length not announced is guarded by
 * the size cap and by the write itself.
 */
async function checkFreeSpace(partial: string, shown: string, needed: number): Promise<void> {
  if (needed <= 0) return;
  const { bavail, bsize } = await statfs(path.dirname(partial));
  const free = bavail * bsize;
  if (needed > free) {
    throw new EdgeInferError('EI_STORE_FULL', [path.dirname(partial), shown, `it needs ${needed} bytes and ${free} are free`]);
  }
}

/** Reports each tenth once, not every chunk. */
function progressReporter(onProgress: ((fraction: number) => void) | undefined): (done: number, total: number) => void {
  let reported = 0;
  return (done, total) => {
    if (!onProgress || !Number.isFinite(total) || total <= 0) return;
    const tenth = Math.floor((done / total) * 10);
    if (tenth > reported) {
      reported = tenth;
      onProgress(tenth / 10);
    }
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
