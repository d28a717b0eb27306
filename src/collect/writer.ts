/**
 * Writes kept calls to the collection folder, one at a time, behind a bounded queue: the request path only
 * queues (a full queue drops the call, and the caller counts it). Each record is its input file, its output file
 * and one line in its partition's open index file; index files are closed (renamed to `.jsonl`) once they are
 * `indexMs` old (a minute on a device) or their hour is over, and only closed files are uploaded.
 */
import { appendFile, mkdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ModelVersion } from '../engine/loaded-version.js';
import type { TapInput } from '../models/tap.js';
import { encodeInput, encodeOutput } from './encode.js';
import type { CollectFolder } from './folder.js';
import { indexName, partitionOf, recordId, type IndexLine } from './layout.js';

/** A call to write: its index line but for the files, and what the files are made from. */
export interface PendingRecord {
  at: Date;
  line: Omit<IndexLine, 'id' | 'time' | 'input' | 'output' | 'inputKind'>;
  model: ModelVersion;
  input: TapInput;
  output: unknown;
  inputs: 'as-received' | 'tensor';
  /** What the record holds in memory while it waits (its input's bytes), for the queue's bound. */
  bytes: number;
}

export interface WriterOptions {
  /** Records that may wait, and their bytes together (inputs are held until written). */
  maxQueued: number;
  maxQueuedBytes: number;
  /** An index file is closed (and becomes uploadable) this long after it was opened. */
  indexMs: number;
  /** Files became whole (data files, closed indexes): the collector trims and uploads. */
  onFiles: () => void;
  /** A record is in the folder, its index line written. */
  onWritten: (record: PendingRecord) => void;
  /** A record that could not be written (a full or read-only disk, an input that would not encode), or an index that would not close. */
  onFailed: (error: unknown, record?: PendingRecord) => void;
}

interface OpenIndex {
  file: string;
  openedAt: number;
}

export class CollectWriter {
  readonly #folder: CollectFolder;
  readonly #options: WriterOptions;
  readonly #queue: PendingRecord[] = [];
  #queuedBytes = 0;
  readonly #open = new Map<string, OpenIndex>();
  #sequence = 0;
  #draining: Promise<void> | undefined;
  /** File work (a record's writes, a rotation) runs one step at a time, so a rotation never renames an index mid-append. */
  #tail: Promise<void> = Promise.resolve();
  readonly #timer: NodeJS.Timeout;

  constructor(folder: CollectFolder, options: WriterOptions) {
    this.#folder = folder;
    this.#options = options;
    // The rotation is serialised with the writes and catches its own failures (onFailed).
    this.#timer = setInterval(() => void this.#serial(() => this.#rotate(false)), Math.max(100, options.indexMs / 4));
    this.#timer.unref();
  }

  /** Queues a record; false when the queue is full (the record is dropped). */
  offer(record: PendingRecord): boolean {
    if (this.#queue.length >= this.#options.maxQueued || this.#queuedBytes + record.bytes > this.#options.maxQueuedBytes) return false;
    this.#queue.push(record);
    this.#queuedBytes += record.bytes;
    this.#draining ??= this.#drain().finally(() => (this.#draining = undefined));
    return true;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Writes what is queued, closes every index file and stops the rotation timer. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#draining;
    await this.#serial(() => this.#rotate(true));
  }

  /** Resolves once the queue is empty (tests, shutdown). */
  async idle(): Promise<void> {
    await this.#draining;
  }

  async #drain(): Promise<void> {
    for (let record = this.#queue.shift(); record; record = this.#queue.shift()) {
      this.#queuedBytes -= record.bytes;
      const written = record;
      await this.#serial(() =>
        this.#write(written).then(
          () => this.#options.onWritten(written),
          (error: unknown) => this.#options.onFailed(error, written),
        ),
      );
      this.#options.onFiles();
    }
  }

  async #write(record: PendingRecord): Promise<void> {
    const partition = partitionOf(record.model.name, record.model.version, record.at);
    const id = recordId(record.at, this.#sequence++);
    const input = await encodeInput(record.model, record.input, record.inputs);
    const output = encodeOutput(record.output);
    const inputFile = `${partition}/${id}-input.${input.extension}`;
    const outputFile = `${partition}/${id}-output.${output.extension}`;
    await this.#folder.write(inputFile, input.bytes);
    await this.#folder.write(outputFile, output.bytes);
    const line: IndexLine = { id, time: record.at.toISOString(), ...record.line, inputKind: input.kind, input: inputFile, output: outputFile };
    await this.#append(partition, `${JSON.stringify(line)}\n`);
  }

  async #append(partition: string, text: string): Promise<void> {
    let index = this.#open.get(partition);
    if (!index) {
      index = { file: indexName(partition, new Date(), this.#sequence++), openedAt: Date.now() };
      this.#open.set(partition, index);
    }
    const target = this.#folder.path(index.file);
    // The folder may have just been pruned by an upload that emptied it: made again, once.
    await appendFile(target, text).catch(async () => {
      await mkdir(path.dirname(target), { recursive: true });
      await appendFile(target, text);
    });
  }

  #serial(step: () => Promise<void>): Promise<void> {
    this.#tail = this.#tail.then(step).catch((error: unknown) => this.#options.onFailed(error));
    return this.#tail;
  }

  /** Closes index files that are old enough, or whose hour is over; all of them when `all`. */
  async #rotate(all: boolean): Promise<void> {
    const now = Date.now();
    const hour = new Date(now).toISOString().slice(0, 13);
    for (const [partition, index] of this.#open) {
      const stale = now - index.openedAt >= this.#options.indexMs || new Date(index.openedAt).toISOString().slice(0, 13) !== hour;
      if (!all && !stale) continue;
      this.#open.delete(partition);
      const closed = index.file.slice(0, -'.open'.length);
      try {
        await rename(this.#folder.path(index.file), this.#folder.path(closed));
        this.#folder.added(closed, (await stat(this.#folder.path(closed))).size);
      } catch (error) {
        this.#options.onFailed(error);
      }
    }
    this.#options.onFiles();
  }
}
