/** A small tmpfs for a store that fills up or refuses writes. The tests run as root; where mounting is refused, the caller skips. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Tmpfs {
  dir: string;
  unmount(): Promise<void>;
}

/** Mounts a tmpfs of `size` (`1m`), read-only when asked; undefined, with the reason printed, where mounting is refused. */
export async function mountTmpfs(size: string, readOnly = false): Promise<Tmpfs | undefined> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-tmpfs-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size}${readOnly ? ',ro' : ''}`, 'tmpfs', dir]);
  } catch (error) {
    console.log(`SKIPPED the tests on a tmpfs store: mounting one was refused (${(error as Error).message.trim()}); they need root`);
    await rm(dir, { recursive: true, force: true });
    return undefined;
  }
  return {
    dir,
    unmount: async () => {
      await run('umount', [dir]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
