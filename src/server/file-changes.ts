/**
 * Calls back when a file changes: polling its stat (size, mtime, inode), which follows an editor's or a
 * mounted secret's replace-by-rename as well as a write in place, where inotify watches would lose the file.
 * Reads run one at a time and in order, so a slow read never lands after a newer one.
 */
import { unwatchFile, watchFile, type Stats } from 'node:fs';

/** Starts watching the files; returns the function that stops it. */
export function onFileChanges(files: readonly string[], changed: () => Promise<void>, intervalMs: number): () => void {
  let running = Promise.resolve();
  const listener = (current: Stats, previous: Stats) => {
    if (current.mtimeMs === previous.mtimeMs && current.size === previous.size && current.ino === previous.ino) return;
    running = running.then(changed);
  };
  for (const file of files) watchFile(file, { interval: intervalMs }, listener);
  return () => {
    for (const file of files) unwatchFile(file, listener);
  };
}
