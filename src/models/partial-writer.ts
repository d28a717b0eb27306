/**
 * A download's `.partial` file, hashed and written on a worker thread (partial-writer-thread.ts) while the
 * module's thread only parses HTTP: each chunk the socket delivers is handed over by transferring its memory,
 * with no copy and no promise per chunk. sha256 (about 1.4 GB/s here, far less on a small ARM device) then runs
 * beside the network instead of after each chunk of it.
 *
 * Back-pressure: `write` answers false once more than HIGH_WATER_BYTES are handed over and not yet written;
 * `onDrain` says when to go on. A write the disk refuses (ENOSPC, a read-only volume) is kept in `error` (with its
 * code) and handed back by `close()`; it is never thrown from an event.
 */
import { Worker } from 'node:worker_threads';
import type { PartialWriterJob } from './partial-writer-thread.js';

const HIGH_WATER_BYTES = 8 * 1024 * 1024;
/** Chunks go over in batches of this many bytes: one message (and one wake-up of the thread) per batch. */
const BATCH_BYTES = 1024 * 1024;
/** A smaller batch goes after this long, so what a slow or stalled sender gave is on disk (and kept by a kill). */
const BATCH_WAIT_MS = 20;
const THREAD = new URL('./partial-writer-thread.js', import.meta.url);

type Reply = { written: number } | { sha256: string } | { failed: { code?: string; message: string } };

export class PartialWriter {
  readonly #worker: Worker;
  readonly #done: Promise<string | undefined>;
  #batch: ArrayBuffer[] = [];
  #batched = 0;
  #batchTimer: NodeJS.Timeout | undefined;
  #unwritten = 0;
  #paused = false;
  #error: Error | undefined;
  /** Called once the handed-over bytes are written down to half the high-water mark, or the disk refused a write. */
  onDrain: () => void = () => undefined;

  /** Starts hashing (the kept part first, when `resumed`) and writing `file`. */
  constructor(file: string, resumed: boolean) {
    this.#worker = new Worker(THREAD, { workerData: { file, resumed } satisfies PartialWriterJob });
    this.#done = new Promise((resolve) => {
      this.#worker.on('message', (reply: Reply) => {
        if ('written' in reply) this.#unwritten -= reply.written;
        else if ('sha256' in reply) return resolve(reply.sha256);
        else this.#error = Object.assign(new Error(reply.failed.message), { code: reply.failed.code });
        if (this.#error) resolve(undefined);
        if (this.#paused && (this.#error || this.#unwritten <= HIGH_WATER_BYTES / 2)) {
          this.#paused = false;
          this.onDrain(); // the sender reads `error` there, and stops
        }
      });
      this.#worker.once('error', (error) => resolve(void (this.#error ??= error)));
      this.#worker.once('exit', () => resolve(void (this.#error ??= new Error('the writer thread ended'))));
    });
  }

  /** The first write error, if the disk refused one. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Hands `chunk` over (its memory moves to the writer: the caller must not use it after); false: pause until `onDrain`. */
  write(chunk: Buffer): boolean {
    if (this.#error) return false;
    const owned = chunk.byteOffset === 0 && chunk.buffer.byteLength === chunk.length;
    // The socket's chunks own their memory (HTTP bodies are copied out of the read buffer); anything else is copied once.
    const memory = owned ? chunk.buffer : chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.length);
    this.#batch.push(memory as ArrayBuffer);
    this.#batched += chunk.length;
    this.#unwritten += chunk.length;
    if (this.#batched >= BATCH_BYTES) this.#send();
    else this.#batchTimer ??= setTimeout(() => this.#send(), BATCH_WAIT_MS);
    if (this.#unwritten <= HIGH_WATER_BYTES) return true;
    this.#paused = true;
    return false;
  }

  #send(): void {
    clearTimeout(this.#batchTimer);
    this.#batchTimer = undefined;
    if (this.#batch.length === 0) return;
    this.#worker.postMessage(this.#batch, this.#batch);
    this.#batch = [];
    this.#batched = 0;
  }

  /** Writes what was handed over and closes the file; the sha256 of the whole file, or the write error. */
  async close(): Promise<{ sha256: string } | { error: Error }> {
    this.#send();
    this.#worker.postMessage('end');
    const sha256 = await this.#done;
    this.#worker.removeAllListeners('exit'); // ended by us now, not by a failure
    await this.#worker.terminate();
    return sha256 !== undefined ? { sha256 } : { error: this.#error! };
  }
}
