/**
 * The worker side of `PartialWriter` (partial-writer.ts): hashes and writes a download's `.partial` file off the
 * module's thread. Chunks come in batches (arrays of transferred ArrayBuffers), in order; each batch is hashed
 * and written with one `writev` as it comes. Blocking writes are fine here: this thread does nothing else.
 *
 * Messages out: `{ written }` after each batch (the sender's back-pressure), then `{ sha256 }` after 'end', or
 * `{ failed: { code, message } }` at the first error (the file is closed; later chunks are dropped).
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, writevSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { hashFile } from './hash-file.js';

export interface PartialWriterJob {
  file: string;
  /** Append to what the file holds (a resumed download), whose bytes are hashed first. */
  resumed: boolean;
}

const port = parentPort!;
const { file, resumed } = workerData as PartialWriterJob;

let failed = false;
const fail = (error: unknown) => {
  failed = true;
  const { code, message } = error as NodeJS.ErrnoException;
  port.postMessage({ failed: { code, message } });
};

let sha: Hash = createHash('sha256');
let fd = -1;
try {
  if (resumed) sha = await hashFile(file);
  fd = openSync(file, resumed ? 'a' : 'w');
} catch (error) {
  fail(error);
}

/** Writes `chunks` whole (a short write goes on from where it stopped, and meets the disk's error). */
function writeAll(chunks: Buffer[]): void {
  let rest = chunks;
  while (rest.length > 0) {
    let written = writevSync(fd, rest);
    const left: Buffer[] = [];
    for (const buffer of rest) {
      if (written >= buffer.length) written -= buffer.length;
      else left.push(buffer.subarray(written)), (written = 0);
    }
    rest = left;
  }
}

port.on('message', (message: ArrayBuffer[] | 'end') => {
  if (failed) return;
  try {
    if (message === 'end') {
      closeSync(fd);
      port.postMessage({ sha256: sha.digest('hex') });
      return;
    }
    const chunks = message.map((memory) => Buffer.from(memory));
    for (const chunk of chunks) sha.update(chunk);
    writeAll(chunks);
    port.postMessage({ written: chunks.reduce((sum, chunk) => sum + chunk.length, 0) });
  } catch (error) {
    fail(error);
    try {
      closeSync(fd);
    } catch {
      // closed already, or never opened: the error above is the one to report
    }
  }
});
