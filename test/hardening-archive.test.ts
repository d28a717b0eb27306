/**
 * Finding 2 of issue 12: a small .tar.gz that expands to gigabytes must fail with a clear code while the
 * module's memory stays bounded (it took 4.4 GB resident before) and the service keeps answering.
 */
import { mkdtemp, readdir } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { unpackArchive } from '../src/models/unpack.js';
import { writeTarGzBomb } from './support/archive-bomb.js';
import { startProgram } from './support/program.js';
import { until } from './support/until.js';

/** Peak resident memory of a process, in MiB (the kernel's high-water mark, so no sample is missed). */
async function peakResidentMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]) / 1024;
}

test('a 5 MB .tar.gz of one 5 GiB file fails with EI_UNPACK_TOO_LARGE; the module stays small and keeps answering', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-bomb-'));
  const bomb = path.join(dir, 'bomb.tar.gz');
  await writeTarGzBomb(bomb, [{ name: 'zeros.bin', mib: 5 * 1024 }]);
  const store = path.join(dir, 'store');
  const program = await startProgram(['--model', bomb, '--name', 'bomb', '--store', store]);
  try {
    let status: { models: Record<string, { status: string; error: { code: string; message: string } | null }> } | undefined;
    await until(
      async () => {
        status = (await (await fetch(`${program.url}/status`)).json()) as typeof status;
        return status!.models.bomb?.status === 'failed';
      },
      'the bomb to fail',
      { timeoutMs: 90_000, everyMs: 200, describe: () => status },
    );
    t.is(status!.models.bomb!.error?.code, 'EI_UNPACK_TOO_LARGE', status!.models.bomb!.error?.message);
    t.regex(status!.models.bomb!.error!.message, /bomb\.tar\.gz expands to more than 4294967296 bytes/);
    const peak = await peakResidentMiB(program.child.pid!);
    t.log(`peak resident memory: ${peak.toFixed(0)} MiB`);
    t.true(peak < 400, `peak resident memory ${peak.toFixed(0)} MiB`);
    t.is((await fetch(`${program.url}/`)).status, 200);
    t.deepEqual(await readdir(path.join(store, 'packages')).catch(() => []), [], 'nothing of it is left in the store');
  } finally {
    await program.stop();
  }
});

test('the cap counts the whole archive: entries each under it, together over it, stop at the cap', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-bomb-'));
  const archive = path.join(dir, 'many.tar.gz');
  await writeTarGzBomb(archive, [1, 2, 3, 4].map((n) => ({ name: `part-${n}.bin`, mib: 24 })));
  const error = await t.throwsAsync(unpackArchive(archive, path.join(dir, 'out'), 64 * 1024 * 1024));
  t.is((error as { code?: string }).code, 'EI_UNPACK_TOO_LARGE');
  t.deepEqual(await readdir(dir), ['many.tar.gz'], 'neither the folder nor its .partial- sibling is left');
  // Under the cap, the same kind of archive unpacks whole.
  const small = path.join(dir, 'small.tar.gz');
  await writeTarGzBomb(small, [{ name: 'a.bin', mib: 3 }, { name: 'b.bin', mib: 2 }]);
  await unpackArchive(small, path.join(dir, 'small'), 64 * 1024 * 1024);
  t.deepEqual((await readdir(path.join(dir, 'small'))).sort(), ['a.bin', 'b.bin']);
  t.is((await readFile(path.join(dir, 'small', 'a.bin'))).length, 3 * 1024 * 1024);
});
