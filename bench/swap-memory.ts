/**
 * 100 swaps between two versions of the bundled model, in process: resident memory after against before.
 * Run by lifecycle.ts as `node --expose-gc swap-memory.js`; prints one JSON line.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Engine } from '../src/engine/engine.js';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { Reconciler } from '../src/models/reconciler.js';
import { ModelRegistry } from '../src/models/registry.js';
import { ModelStore } from '../src/models/store.js';
import { StatusStore } from '../src/status/store.js';

const SWAPS = Number(process.argv[2] ?? 100);
const gc = (globalThis as { gc?: () => void }).gc!;
const settle = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

const store = new ModelStore(await mkdtemp(path.join(tmpdir(), 'edge-infer-swaps-')));
const status = new StatusStore({ version: 'bench', onnxruntime: '', startedAt: '', targets: {} });
const registry = new ModelRegistry(() => undefined);
const reconciler = new Reconciler({ registry, status, store, log: pino({ level: 'silent' }), engine: new Engine({ onProbe: () => undefined }) }, BUNDLED_MODEL);
const slot = (version: string) => ({ models: { face: { version, uri: BUNDLED_MODEL.uri, ...BUNDLED_MODEL.settings } } });

// Two swaps first, so that lazily allocated pools exist before the baseline.
for (const version of ['warm-a', 'warm-b']) {
  reconciler.apply(slot(version));
  await reconciler.settled();
}
await settle();
const before = process.memoryUsage().rss;
const started = performance.now();
for (let i = 0; i < SWAPS; i++) {
  reconciler.apply(slot(String(i)));
  await reconciler.settled();
  if (status.model('face')?.status !== 'active') throw new Error(`swap ${i} failed: ${JSON.stringify(status.model('face'))}`);
}
const perSwapMs = (performance.now() - started) / SWAPS;
await settle();
const after = process.memoryUsage().rss;
process.stdout.write(`${JSON.stringify({ swaps: SWAPS, before, after, perSwapMs })}\n`);
registry.close();
