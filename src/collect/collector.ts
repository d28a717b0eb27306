/**
 * Data collection (issue 15, part 2; README "Data collection"): a tap on the registry that keeps chosen calls
 * (input, output, latency, confidence) in a bounded local folder and uploads it to Azure Blob Storage. On the
 * request path it only decides and queues; encoding, writing, the disk cap and uploads happen behind the queue.
 * Nothing is kept until the desired state's `collect` section asks.
 */
import type { Logger } from 'pino';
import type { Backoff } from '../backoff.js';
import { EdgeInferError, isEdgeInferError, messageOf } from '../errors.js';
import { keptInput, type Tap, type TapInput, type TappedCall } from '../models/tap.js';
import type { Metrics } from '../status/metrics.js';
import type { CollectStatus, StatusStore } from '../status/store.js';
import { jsonOf } from './encode.js';
import { CollectFolder } from './folder.js';
import type { IndexLine } from './layout.js';
import { confidenceOf, keepsCall } from './select.js';
import type { CollectSettings } from './settings.js';
import { Uploader } from './uploader.js';
import { CollectWriter, type PendingRecord } from './writer.js';

/** Timings a device wants long and a test wants short; the defaults are the device's. */
export interface CollectTuning {
  /** An index file is closed, and becomes uploadable, this long after its first line (default 60 s). */
  indexMs?: number;
  /** Waits between failed uploads (default 1 s doubling to 60 s). */
  backoff?: Backoff;
  /** One upload's deadline (default 60 s). */
  uploadTimeoutMs?: number;
}

export interface CollectorOptions {
  /** The collection folder (`<store>/collected`). */
  root: string;
  status: StatusStore;
  metrics: Pick<Metrics, 'collectRecords' | 'collectFiles'>;
  log: Logger;
  tuning?: CollectTuning;
}

/** The write queue's bounds: records held in memory until written, and their inputs' bytes. */
const MAX_QUEUED = 64;
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** The status is written at most this often (the reported properties coalesce to once a second anyway). */
const STATUS_MS = 1000;
/** A JSON body's size is not known without serialising it on the request path; it is counted as this. */
const JSON_BODY_ESTIMATE = 4096;

export class Collector implements Tap {
  readonly #folder: CollectFolder;
  readonly #writer: CollectWriter;
  readonly #uploader: Uploader;
  readonly #options: CollectorOptions;
  #settings: CollectSettings | undefined;
  /** The clock hour (UTC, `yyyy-MM-ddTHH`) `#keptThisHour` counts for. */
  #hour = '';
  #keptThisHour = 0;
  #figures: CollectStatus = {
    state: 'off',
    upload: 'none',
    kept: 0,
    skippedHourly: 0,
    droppedQueueFull: 0,
    failed: 0,
    pendingFiles: 0,
    pendingBytes: 0,
    uploadedFiles: 0,
    uploadedBytes: 0,
    deletedForCap: 0,
    lastError: null,
  };
  /** Whether the status shows collection: once the desired state asked, or files from an earlier run wait. */
  #shown = false;
  #statusTimer: NodeJS.Timeout | undefined;
  #statusAt = 0;
  /** Error codes failing now: the first failure is logged at warn, the repeats at debug until a success clears it. */
  readonly #failing = new Set<string>();

  /** Opens the folder (what an earlier run left is uploaded first, once collection is asked for again). */
  static async open(options: CollectorOptions): Promise<Collector> {
    const folder = new CollectFolder(options.root);
    // A store the module cannot write (read-only, wrong owner) must not stop it from serving: collection then fails
    // record by record (EI_COLLECT_WRITE_FAILED in its status), as it would if the disk went read-only later.
    await folder.scan().catch((error: unknown) => options.log.warn({ folder: options.root, err: messageOf(error) }, 'the collection folder cannot be made or read; collected records fail until it can'));
    return new Collector(folder, options);
  }

  private constructor(folder: CollectFolder, options: CollectorOptions) {
    this.#folder = folder;
    this.#options = options;
    const tuning = options.tuning ?? {};
    this.#writer = new CollectWriter(folder, {
      maxQueued: MAX_QUEUED,
      maxQueuedBytes: MAX_QUEUED_BYTES,
      indexMs: tuning.indexMs ?? 60_000,
      onFiles: () => void this.#filesAdded(),
      onWritten: (record) => {
        this.#failing.delete('EI_COLLECT_WRITE_FAILED');
        this.#figures.kept++;
        options.metrics.collectRecords.inc({ model: record.model.name, outcome: 'kept' });
        this.#changed();
      },
      onFailed: (error, record) => {
        if (record) {
          this.#figures.failed++;
          options.metrics.collectRecords.inc({ model: record.model.name, outcome: 'failed' });
        }
        this.#error(isEdgeInferError(error) ? error : new EdgeInferError('EI_COLLECT_WRITE_FAILED', [folder.root, messageOf(error)]));
      },
    });
    this.#uploader = new Uploader(folder, {
      backoff: tuning.backoff ?? { firstMs: 1000, mostMs: 60_000 },
      timeoutMs: tuning.uploadTimeoutMs ?? 60_000,
      onUploaded: (_file, bytes) => {
        this.#failing.delete('EI_COLLECT_UPLOAD_FAILED');
        this.#figures.uploadedFiles++;
        this.#figures.uploadedBytes += bytes;
        options.metrics.collectFiles.inc({ outcome: 'uploaded' });
        this.#changed();
      },
      onError: (error) => this.#error(error),
      onState: (state) => {
        this.#figures.upload = state;
        this.#changed();
      },
    });
    if (folder.files > 0) this.#shown = true;
    this.#changed();
  }

  /** The desired state's `collect` section, checked (undefined: collection off; files already kept stay). */
  apply(settings: CollectSettings | undefined): void {
    this.#settings = settings;
    this.#figures.state = settings ? 'collecting' : 'off';
    if (settings) this.#shown = true;
    this.#uploader.setSasUrl(settings?.sasUrl);
    void this.#filesAdded();
    this.#changed();
  }

  wants(slot: string): boolean {
    const settings = this.#settings;
    return settings !== undefined && settings.mode !== 'disagreements' && (settings.models === undefined || settings.models.has(slot));
  }

  seen(call: TappedCall): void {
    const settings = this.#settings;
    if (!settings || !this.wants(call.model.name)) return;
    const confidence = confidenceOf(call.output);
    if (!keepsCall(settings, confidence)) return;
    this.#keep(settings, call, { reason: settings.mode as IndexLine['reason'], confidence });
  }

  /** The shadow runner's word that a candidate answered the same input differently: kept in `disagreements` mode. */
  disagreement(call: TappedCall, candidate: { version: string; output: unknown }): void {
    const settings = this.#settings;
    if (settings?.mode !== 'disagreements' || (settings.models !== undefined && !settings.models.has(call.model.name))) return;
    this.#keep(settings, call, { reason: 'disagreement', confidence: confidenceOf(call.output), candidate: { version: candidate.version, output: jsonOf(candidate.output) } });
  }

  /** Resolves once every queued record is written (index files close on their own schedule, or in `close`). */
  async flush(): Promise<void> {
    await this.#writer.idle();
  }

  async close(): Promise<void> {
    await this.#writer.close();
    await this.#uploader.stop();
    clearTimeout(this.#statusTimer);
    this.#statusTimer = undefined;
    this.#publish();
  }

  /** On the request path: the hourly cap, then the queue; buffers the caller reuses are copied (keptInput). */
  #keep(settings: CollectSettings, call: TappedCall, line: Pick<IndexLine, 'reason' | 'confidence' | 'candidate'>): void {
    const model = call.model.name;
    const hour = new Date().toISOString().slice(0, 13);
    if (hour !== this.#hour) {
      this.#hour = hour;
      this.#keptThisHour = 0;
    }
    if (this.#keptThisHour >= settings.maxPerHour) {
      this.#figures.skippedHourly++;
      this.#options.metrics.collectRecords.inc({ model, outcome: 'hourly_cap' });
      this.#changed();
      return;
    }
    const input = keptInput(call.input);
    const record: PendingRecord = {
      at: new Date(),
      line: { source: call.source, model, version: call.model.version, latencyMs: Math.round(call.ms * 1000) / 1000, ...line },
      model: call.model,
      input,
      output: call.output,
      inputs: settings.inputs,
      bytes: inputBytes(input),
    };
    if (!this.#writer.offer(record)) {
      this.#figures.droppedQueueFull++;
      this.#options.metrics.collectRecords.inc({ model, outcome: 'queue_full' });
      this.#changed();
      return;
    }
    this.#keptThisHour++;
  }

  async #filesAdded(): Promise<void> {
    const settings = this.#settings;
    if (settings) {
      const deleted = await this.#folder.trim(settings.maxDiskBytes);
      if (deleted > 0) {
        this.#figures.deletedForCap += deleted;
        this.#options.metrics.collectFiles.inc({ outcome: 'deleted_cap' }, deleted);
        this.#options.log.warn({ deleted, maxDiskBytes: settings.maxDiskBytes }, 'collected files deleted unsent, oldest first, to stay under collect.maxDiskMB');
      }
    }
    this.#uploader.filesAdded();
    this.#changed();
  }

  #error(error: EdgeInferError): void {
    this.#figures.lastError = { code: error.code, message: error.message, at: new Date().toISOString() };
    // Messages are coded and hold no SAS (uploader.ts). An outage or a full disk is logged once at warn, then its
    // repeats at debug: a camera at its frame rate must not fill the log with one line per frame.
    const level = this.#failing.has(error.code) ? 'debug' : 'warn';
    this.#failing.add(error.code);
    this.#options.log[level]({ code: error.code }, error.message);
    this.#changed();
  }

  /** The status follows at most once a second. */
  #changed(): void {
    if (this.#statusTimer) return;
    this.#statusTimer = setTimeout(
      () => {
        this.#statusTimer = undefined;
        this.#publish();
      },
      Math.max(0, this.#statusAt + STATUS_MS - Date.now()),
    );
    this.#statusTimer.unref();
  }

  #publish(): void {
    if (!this.#shown) return;
    this.#statusAt = Date.now();
    this.#figures.pendingFiles = this.#folder.files;
    this.#figures.pendingBytes = this.#folder.bytes;
    this.#options.status.setCollect(this.#figures);
  }
}

function inputBytes(input: TapInput): number {
  if (input.kind === 'infer') return Object.values(input.feeds).reduce((sum, tensor) => sum + tensor.data.byteLength, 0);
  const { request } = input;
  return request.kind === 'image' ? request.image.length : request.kind === 'pixels' ? request.pixels.length : JSON_BODY_ESTIMATE;
}
