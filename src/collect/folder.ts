/**
 * The bounded local collection folder: every whole file in it, oldest first, with its size, so that the
 * uploader takes the oldest and the disk cap deletes the oldest without walking the disk each time. The disk is
 * walked once, at start, to pick up what a previous run left (it is uploaded first).
 */
import { mkdir, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OPEN_INDEX_SUFFIX, WRITING_SUFFIX } from './layout.js';

export class CollectFolder {
  readonly root: string;
  /** Whole files (relative path → bytes), in the order they were closed: the first is the oldest. */
  readonly #files = new Map<string, number>();
  #bytes = 0;

  constructor(root: string) {
    this.root = root;
  }

  get files(): number {
    return this.#files.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Lists what a previous run left, oldest first. Index files it had open are closed (their lines were each
   * written whole); data files it was writing are removed (their index line was never written).
   */
  async scan(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    const found: Array<{ file: string; bytes: number; mtimeMs: number }> = [];
    for (const entry of await readdir(this.root, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      let file = path.relative(this.root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/');
      if (file.endsWith(WRITING_SUFFIX)) {
        await rm(this.path(file), { force: true });
        continue;
      }
      if (file.endsWith(OPEN_INDEX_SUFFIX)) {
        const closed = file.slice(0, -'.open'.length);
        await rename(this.path(file), this.path(closed));
        file = closed;
      }
      const { size, mtimeMs } = await stat(this.path(file));
      found.push({ file, bytes: size, mtimeMs });
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs || a.file.localeCompare(b.file));
    for (const { file, bytes } of found) this.added(file, bytes);
  }

  path(file: string): string {
    return path.join(this.root, ...file.split('/'));
  }

  /** Writes a whole file: under a temporary name first, so the uploader never sees half of one. */
  async write(file: string, bytes: Buffer): Promise<void> {
    const target = this.path(file);
    const temporary = target + WRITING_SUFFIX;
    await mkdir(path.dirname(target), { recursive: true });
    try {
      // The folder may have just been pruned by an upload that emptied it: made again, once.
      await writeFile(temporary, bytes).catch(async () => {
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(temporary, bytes);
      });
      await rename(temporary, target);
    } catch (error) {
      // A full disk leaves part of the file: it goes, or it would hold space the cap never counts.
      await rm(temporary, { force: true });
      throw error;
    }
    this.added(file, bytes.length);
  }

  /** A file closed in place (an index file renamed when rotated). */
  added(file: string, bytes: number): void {
    if (this.#files.has(file)) return;
    this.#files.set(file, bytes);
    this.#bytes += bytes;
  }

  oldest(): string | undefined {
    return this.#files.keys().next().value;
  }

  /** The `count` oldest files. */
  oldestFew(count: number): string[] {
    const few: string[] = [];
    for (const file of this.#files.keys()) {
      if (few.length === count) break;
      few.push(file);
    }
    return few;
  }

  /** Removes a file (uploaded, or over the cap); false when it was already gone from the list. */
  async remove(file: string): Promise<boolean> {
    const bytes = this.#files.get(file);
    if (bytes === undefined) return false;
    this.#files.delete(file);
    this.#bytes -= bytes;
    await rm(this.path(file), { force: true });
    await this.#pruneEmpty(path.dirname(this.path(file)));
    return true;
  }

  /** Deletes the oldest files until the folder holds at most `maxBytes`; returns how many went. */
  async trim(maxBytes: number): Promise<number> {
    let deleted = 0;
    while (this.#bytes > maxBytes) {
      const file = this.oldest();
      if (file === undefined || !(await this.remove(file))) break;
      deleted++;
    }
    return deleted;
  }

  /** Partition folders left empty go, up to the root (one that is not empty stops it). */
  async #pruneEmpty(dir: string): Promise<void> {
    for (let current = dir; current.startsWith(this.root + path.sep); current = path.dirname(current)) {
      try {
        await rmdir(current);
      } catch {
        return;
      }
    }
  }
}
