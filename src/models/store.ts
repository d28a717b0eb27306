/**
 * The store's memory (contract section 10): for each model, the version that was last verified and served
 * and the ones before it, so that a restart serves them at once without the network and `activate` can roll
 * back. Content lives under `blobs/<sha256>/` and `packages/<sha256>/` (see locate.ts); this file keeps
 * `state.json`, written atomically, and removes content no kept version points at. Paths inside the store are
 * written relative to it, so a store moved or mounted elsewhere (another host folder, another container path)
 * still finds its content; a model read in place keeps its absolute path.
 */
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PARTIAL_UNPACK_MARK } from './unpack.js';
import { parseStateFile } from './state-file.js';
import type { Placement } from '../engine/target.js';
import type { ModelSettings } from './manifest.js';

/** Where it ran is kept as the desired state asked (Placement), so that a restart compares equal and loads nothing twice. */
export interface StoredVersion extends Placement {
  version: string;
  /** The content's sha256; absent for a model read in place (a local file or folder). */
  sha256?: string;
  /** The located file or package folder, ready to load with no download (absolute in memory). */
  path: string;
  settings?: ModelSettings;
  /** It became active as a promoted candidate, not because the desired state named it (reconciler.ts). */
  promoted?: true;
}

interface StoredModel {
  active: StoredVersion;
  /** Most recent first. */
  previous: StoredVersion[];
  /** The candidate loaded beside the active version: its content stays while it is shadowed. */
  candidate?: StoredVersion;
}

interface StateFile {
  models: Record<string, StoredModel>;
}

const STATE_FILE = 'state.json';
const CONTENT_FOLDERS = ['blobs', 'packages'];
/** A download cut short (`blobs/<sha256>/<file>.partial`) is kept this long for the next try to resume. */
export const PARTIAL_DOWNLOAD_KEEP_MS = 24 * 3600_000;

export class ModelStore {
  readonly dir: string;
  readonly #keepPrevious: number;
  #state: StateFile = { models: {} };
  #writing: Promise<void> = Promise.resolve();
  /** Content a deploy is fetching or loading, which no state entry names yet: garbage collection leaves it. */
  readonly #pinned = new Map<string, number>();

  /** @param keepPrevious versions kept per model besides the active one (rollback depth). */
  constructor(dir: string, keepPrevious = 2) {
    this.dir = dir;
    this.#keepPrevious = keepPrevious;
  }

  /**
   * Reads state.json; a missing file is an empty store. A file that is not the store's (wrong shape, cut short)
   * is set aside as `state.json.bad-<time>` and the store starts empty: the problem comes back to be reported.
   * Unpacks a killed process left half done are removed first.
   */
  async open(): Promise<string | undefined> {
    await this.#collectPartialUnpacks();
    const file = path.join(this.dir, STATE_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return undefined;
    }
    const parsed = parseStateFile<StateFile>(text);
    if (typeof parsed !== 'string') {
      this.#state = this.#withPaths(parsed, (where) => path.resolve(this.dir, where));
      return undefined;
    }
    const aside = `${STATE_FILE}.bad-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const kept = await rename(file, path.join(this.dir, aside)).then(
      () => `set aside as ${aside}`,
      (error: unknown) => `could not be set aside (${(error as Error).message})`,
    );
    return `${STATE_FILE} ${parsed}; it ${kept} and the store starts without stored versions`;
  }

  /** `packages/<sha256>.partial-<pid>`: no unpack runs before open, so any such folder was left by a killed process. */
  async #collectPartialUnpacks(): Promise<void> {
    const packages = path.join(this.dir, 'packages');
    for (const entry of await readdir(packages).catch(() => [] as string[])) {
      if (entry.includes(PARTIAL_UNPACK_MARK)) await rm(path.join(packages, entry), { recursive: true, force: true });
    }
  }

  /** The last active version of each model. */
  actives(): Record<string, StoredVersion> {
    return Object.fromEntries(Object.entries(this.#state.models).map(([name, m]) => [name, m.active]));
  }

  /** Every kept version of a model, the active one first. */
  versions(name: string): StoredVersion[] {
    const model = this.#state.models[name];
    return model ? [model.active, ...model.previous] : [];
  }

  /**
   * Records a version as the one serving `name`; the one before becomes the first previous. A candidate of the
   * same version (the one promoted) is no longer a candidate.
   */
  async recordActive(name: string, version: StoredVersion): Promise<void> {
    const model = this.#state.models[name];
    const earlier = model ? [model.active, ...model.previous] : [];
    const previous = earlier.filter((v) => v.version !== version.version).slice(0, this.#keepPrevious);
    const candidate = model?.candidate?.version === version.version ? undefined : model?.candidate;
    this.#state.models[name] = { active: version, previous, ...(candidate ? { candidate } : {}) };
    await this.#save();
  }

  /** The version serving `name`, as recorded. */
  active(name: string): StoredVersion | undefined {
    return this.#state.models[name]?.active;
  }

  /** The candidate recorded beside `name`'s active version. */
  candidate(name: string): StoredVersion | undefined {
    return this.#state.models[name]?.candidate;
  }

  /** The candidate loaded beside `name`'s active version (undefined: none), so that its content is kept. */
  async recordCandidate(name: string, candidate: StoredVersion | undefined): Promise<void> {
    const model = this.#state.models[name];
    if (!model || model.candidate === candidate) return;
    if (candidate) model.candidate = candidate;
    else delete model.candidate;
    await this.#save();
  }

  /** Keeps `sha256`'s content while `work` runs, whatever the state file says. */
  async pinned<T>(sha256: string | undefined, work: () => Promise<T>): Promise<T> {
    if (!sha256) return work();
    this.#pinned.set(sha256, (this.#pinned.get(sha256) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const count = this.#pinned.get(sha256)! - 1;
      if (count === 0) this.#pinned.delete(sha256);
      else this.#pinned.set(sha256, count);
    }
  }

  async forget(name: string): Promise<void> {
    if (!(name in this.#state.models)) return;
    delete this.#state.models[name];
    await this.#save();
  }

  /** Removes content no kept version points at (a version that failed after its download leaves some). */
  collect(): Promise<void> {
    this.#writing = this.#writing.catch(() => undefined).then(() => this.#collectGarbage());
    return this.#writing;
  }

  /** Saves atomically (a whole new file renamed over the old), then removes unreferenced content. */
  #save(): Promise<void> {
    const snapshot = JSON.stringify(this.#withPaths(this.#state, (where) => this.#relative(where)), null, 2);
    // Each save waits for the one before; one that failed does not stop the next.
    this.#writing = this.#writing.catch(() => undefined).then(async () => {
      const file = path.join(this.dir, STATE_FILE);
      await writeFile(`${file}.tmp`, snapshot);
      await rename(`${file}.tmp`, file);
      await this.#collectGarbage();
    });
    return this.#writing;
  }

  /** The state with each version's path mapped (to the disk's relative form, or back to absolute). */
  #withPaths(state: StateFile, map: (where: string) => string): StateFile {
    const mapped = (v: StoredVersion): StoredVersion => ({ ...v, path: map(v.path) });
    const model = (m: StoredModel): StoredModel => ({ active: mapped(m.active), previous: m.previous.map(mapped), ...(m.candidate ? { candidate: mapped(m.candidate) } : {}) });
    return { models: Object.fromEntries(Object.entries(state.models).map(([name, m]) => [name, model(m)])) };
  }

  /** `packages/<sha>/...` for a path inside the store; a path outside it stays as it is. */
  #relative(where: string): string {
    const inside = path.relative(path.resolve(this.dir), where);
    return inside && !inside.startsWith('..') && !path.isAbsolute(inside) ? inside : where;
  }

  /**
   * Content no kept version points at goes; what a kept (so possibly draining) version uses stays, and so does
   * content a deploy holds. Both are checked at each removal, not once at the start: a deploy that finishes while
   * this runs unpins its content and records it in the state in one step, and must find it still there.
   */
  async #collectGarbage(): Promise<void> {
    for (const folder of CONTENT_FOLDERS) {
      const entries = await readdir(path.join(this.dir, folder)).catch(() => [] as string[]);
      for (const entry of entries) {
        const where = path.join(this.dir, folder, entry);
        if (!/^[0-9a-f]{64}$/.test(entry) || (await holdsRecentPartial(where)) || this.#inUse(entry)) continue;
        await rm(where, { recursive: true, force: true });
      }
    }
  }

  #inUse(sha256: string): boolean {
    if (this.#pinned.has(sha256)) return true;
    return Object.values(this.#state.models).some((m) => m.active.sha256 === sha256 || m.candidate?.sha256 === sha256 || m.previous.some((v) => v.sha256 === sha256));
  }
}

/** A download cut short (a restart, a lost network) that the next try may resume: left for that long. */
async function holdsRecentPartial(folder: string): Promise<boolean> {
  for (const entry of await readdir(folder).catch(() => [] as string[])) {
    if (!entry.endsWith('.partial')) continue;
    const modified = await stat(path.join(folder, entry)).then((s) => s.mtimeMs, () => 0);
    if (Date.now() - modified < PARTIAL_DOWNLOAD_KEEP_MS) return true;
  }
  return false;
}
