/**
 * ONNX sessions shared between versions that load the same file on the same target with the same threads, and
 * released one per turn of the event loop. Slots that name the same package (a fleet's desired state with one
 * model under many names) then cost one session, not one each: 400 slots of the bundled model were 400 sessions,
 * about 1.4 GB, and glibc kept most of it after they were released (the freed heap is fragmented, so it is reused
 * but never handed back). A session is released only when its last user lets go; releasing one runs on the event
 * loop's thread, so hundreds released at once are spread over turns instead of holding every route.
 */
import { stat } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { EngineModel, Target } from './target.js';

interface Shared {
  model: Promise<EngineModel>;
  users: number;
}

export class SharedSessions {
  readonly #held = new Map<string, Shared>();
  #releasing: Promise<void> = Promise.resolve();

  /** `target` with its `load` shared under `place` (the target's kind, providers and threads). */
  share(target: Target, place: string): Target {
    return { ...target, load: (file) => this.#load(file, place, () => target.load(file)) };
  }

  async #load(file: string, place: string, load: () => Promise<EngineModel>): Promise<EngineModel> {
    // The file's identity as well as its path: a file replaced in place is another model.
    const { size, mtimeMs, ino } = await stat(file);
    const key = JSON.stringify([place, file, size, mtimeMs, ino]);
    let shared = this.#held.get(key);
    if (!shared) {
      const entry: Shared = { model: load(), users: 0 };
      entry.model.catch(() => this.#held.get(key) === entry && this.#held.delete(key));
      this.#held.set(key, entry);
      shared = entry;
    }
    shared.users++;
    const entry = shared;
    let model: EngineModel;
    try {
      model = await entry.model;
    } catch (error) {
      entry.users--;
      throw error;
    }
    let released = false;
    return {
      file: model.file,
      signature: model.signature,
      run: (feeds, outputNames) => model.run(feeds, outputNames),
      release: async () => {
        if (released) return;
        released = true;
        if (--entry.users > 0) return;
        if (this.#held.get(key) === entry) this.#held.delete(key);
        await this.#paced(() => model.release());
      },
    };
  }

  /** Runs `release` after those before it, each on a turn of its own. */
  #paced(release: () => Promise<void>): Promise<void> {
    const next = this.#releasing.then(() => nextTurn()).then(release);
    this.#releasing = next.catch(() => undefined);
    return next;
  }
}
