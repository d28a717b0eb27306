/**
 * The keys file (`--keys-file`), watched: when it changes, its keys replace the ring's at once, so a key is
 * rotated without a restart (the file holds the old and the new key while clients move over). A file that
 * cannot be read, or holds no key (a half-written file), changes nothing: the keys in force stay, and the
 * problem is logged.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { parseKeys } from '../config/settings.js';
import { messageOf } from '../errors.js';
import type { KeyRing } from './auth.js';
import { onFileChanges } from './file-changes.js';

/** Starts watching; returns the function that stops it. */
export function watchKeysFile(file: string, ring: KeyRing, log: Logger, intervalMs = 500): () => void {
  const reload = async () => {
    let keys: string[];
    try {
      keys = parseKeys(await readFile(file, 'utf8'));
    } catch (error) {
      return log.warn({ file }, `the keys file cannot be read (${messageOf(error)}); the ${ring.length} keys in force stay`);
    }
    if (keys.length === 0) return log.warn({ file }, `the keys file holds no key; the ${ring.length} keys in force stay (to serve without keys, start without --keys-file)`);
    ring.replace(keys);
    log.info({ file, keys: keys.length }, `the keys file changed: ${keys.length} keys are valid now`);
  };
  return onFileChanges([file], reload, intervalMs);
}
