/**
 * The real service (createService, as main.ts builds it) for the data-collection tests: its log captured as
 * text (to prove the SAS URL never reaches it), short collection timings, and the desired state applied through
 * the same reader the twin and the desired file use.
 */
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readDesiredState } from '../../src/config/desired-state.js';
import { parseSettings, type Settings } from '../../src/config/settings.js';
import { createLogger } from '../../src/log.js';
import { createService, type Service } from '../../src/service.js';
import type { CollectStatus } from '../../src/status/store.js';
import { photo } from './fixtures.js';

export interface CollectingService {
  url: string;
  service: Service;
  storeDir: string;
  /** The collection folder. */
  folder: string;
  /** Every log line so far, as written. */
  log: string[];
  /** Applies a desired document (its `collect` section, with the bundled model serving). */
  desire(document: Record<string, unknown>): void;
  collect(): CollectStatus | undefined;
  /** POST /score with photo `n` of face-api's samples (or the bytes given); the answer's JSON. */
  score(image: number | Buffer): Promise<unknown>;
  /** Files in the collection folder, relative paths with `/`. */
  files(): Promise<string[]>;
  read(file: string): Promise<Buffer>;
  close(): Promise<void>;
}

/** @param storeDir a store to start from (what an earlier run left); a new one when unset. */
export async function startCollecting(storeDir?: string): Promise<CollectingService> {
  storeDir ??= await mkdtemp(path.join(tmpdir(), 'edge-infer-collect-'));
  const settings = parseSettings(['--store', storeDir, '--port', '0', '--host', '127.0.0.1', '--log-level', 'debug'], {}) as Settings;
  const log: string[] = [];
  const service = await createService(settings, createLogger('debug', { write: (line: string) => void log.push(line) }), {
    tuning: { collect: { indexMs: 200, backoff: { firstMs: 100, mostMs: 400 }, uploadTimeoutMs: 5000 } },
  });
  await service.app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}`;
  const folder = path.join(storeDir, 'collected');
  const desire = (document: Record<string, unknown>) => {
    const state = readDesiredState(document);
    if (typeof state === 'string') throw new Error(state);
    service.applyDesired(state);
  };
  desire({});
  await service.reconciler.settled();
  return {
    url,
    service,
    storeDir,
    folder,
    log,
    desire,
    collect: () => service.status.snapshot().runtime.collect,
    score: async (image) => {
      const body = typeof image === 'number' ? await photo(image) : image;
      const response = await fetch(`${url}/score`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: new Uint8Array(body) });
      if (response.status !== 200) throw new Error(`score answered ${response.status}: ${await response.text()}`);
      return response.json();
    },
    files: async () => {
      const entries = await readdir(folder, { recursive: true, withFileTypes: true });
      return entries.filter((e) => e.isFile()).map((e) => path.relative(folder, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
    },
    read: (file) => readFile(path.join(folder, file)),
    close: async () => {
      await service.reconciler.settled();
      await service.close();
    },
  };
}
