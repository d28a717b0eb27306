/**
 * Uploads the collection folder to an Azure Blob Storage container named by a SAS URL, oldest files first, a few
 * at a time (one round trip each would hold a camera's files back on a distant storage account); the blob's name
 * is the file's path in the folder, and the file is deleted once the upload is acknowledged. A failure (the
 * network, the storage account, an expired SAS) keeps the file and waits by the one backoff schedule before the
 * oldest files are tried again, so an offline period loses nothing and resumes in order.
 * The SAS URL is never put in an error, a log line or the status: errors name the container without its query.
 */
import { readFile } from 'node:fs/promises';
import { AnonymousCredential, ContainerClient } from '@azure/storage-blob';
import { backoffDelay, type Backoff } from '../backoff.js';
import { EdgeInferError, messageOf } from '../errors.js';
import { redactText, redactUri } from '../redact.js';
import type { CollectFolder } from './folder.js';
import { contentTypeOf } from './layout.js';

/** `none`: no SAS URL (files stay local); `idle`: nothing to upload; `backoff`: the last upload failed, waiting to retry. */
export type UploadState = 'none' | 'idle' | 'uploading' | 'backoff';

export interface UploaderOptions {
  backoff: Backoff;
  /** One upload's deadline; past it the upload counts as failed and is tried again. */
  timeoutMs: number;
  onUploaded: (file: string, bytes: number) => void;
  /** A coded error whose message holds no secret. */
  onError: (error: EdgeInferError) => void;
  onState: (state: UploadState) => void;
}

/** Uploads at once: the oldest this many files go together, and the next batch starts when they are done. */
const PARALLEL_UPLOADS = 4;

interface Target {
  sasUrl: string;
  container: ContainerClient;
}

export class Uploader {
  readonly #folder: CollectFolder;
  readonly #options: UploaderOptions;
  #target: Target | undefined;
  #stopped = false;
  #wake: (() => void) | undefined;
  /** Whether new files end the current wait: they end an idle one, not a backoff (an outage is not hammered). */
  #idle = false;
  readonly #abort = new AbortController();
  readonly #running: Promise<void>;

  constructor(folder: CollectFolder, options: UploaderOptions) {
    this.#folder = folder;
    this.#options = options;
    this.#running = this.#run();
  }

  /** Uploads to this container from now on (undefined: none; files wait on disk). */
  setSasUrl(sasUrl: string | undefined): void {
    if (sasUrl === this.#target?.sasUrl) return;
    // The SDK's own retries are off: ours wait by the module's one schedule and report each failure.
    this.#target = sasUrl === undefined ? undefined : { sasUrl, container: new ContainerClient(sasUrl, new AnonymousCredential(), { retryOptions: { maxTries: 1, tryTimeoutInMs: this.#options.timeoutMs } }) };
    this.#wake?.();
  }

  /** New files: an idle wait ends now. */
  filesAdded(): void {
    if (this.#idle) this.#wake?.();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    this.#wake?.();
    await this.#running;
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (!this.#stopped) {
      const target = this.#target;
      const files = this.#folder.oldestFew(PARALLEL_UPLOADS);
      if (!target || files.length === 0) {
        this.#options.onState(target ? 'idle' : 'none');
        this.#idle = true;
        await this.#sleep(undefined);
        this.#idle = false;
        continue;
      }
      this.#options.onState('uploading');
      const results = await Promise.allSettled(files.map((file) => this.#upload(target, file)));
      if (this.#stopped) return;
      const failed = results.findIndex((result) => result.status === 'rejected');
      if (failed === -1) {
        attempt = 0;
        continue;
      }
      this.#options.onError(uploadError(files[failed]!, target.sasUrl, (results[failed] as PromiseRejectedResult).reason));
      this.#options.onState('backoff');
      await this.#sleep(backoffDelay(attempt++, this.#options.backoff));
    }
  }

  async #upload(target: Target, file: string): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.#folder.path(file));
    } catch {
      // Gone from under us (deleted by hand): nothing to upload, and nothing to retry.
      await this.#folder.remove(file);
      return;
    }
    await target.container.getBlockBlobClient(file).uploadData(bytes, {
      blobHTTPHeaders: { blobContentType: contentTypeOf(file) },
      abortSignal: this.#abort.signal,
    });
    if (await this.#folder.remove(file)) this.#options.onUploaded(file, bytes.length);
  }

  /** Waits `ms`, or until woken when undefined; a wake ends either. */
  #sleep(ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.#wake = undefined;
        resolve();
      }
      this.#wake = done;
    });
  }
}

/** The failure, coded, with the container shown without its SAS and the SAS cut out of whatever the SDK said. */
function uploadError(file: string, sasUrl: string, error: unknown): EdgeInferError {
  const { statusCode, code } = error as { statusCode?: number; code?: string };
  const said = messageOf(error).split('\n')[0]!;
  const reason = [statusCode && `HTTP ${statusCode}`, code, said].filter(Boolean).join(' ');
  return new EdgeInferError('EI_COLLECT_UPLOAD_FAILED', [file, redactUri(sasUrl), redactText(reason, sasUrl)]);
}
