/**
 * Unpacks a model archive (.tar.gz, .tgz, .tar, .zip) into a folder, safely: no entry may land outside
 * the folder, links are refused, and the total expanded size is capped, counted as the bytes come out of the
 * decompressor (an archive bomb stops at the cap). Both formats stream with back-pressure, so memory stays
 * bounded whatever the archive expands to. The archive is unpacked into a temporary sibling and renamed into
 * place only when complete.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar';
import yauzl from 'yauzl';
import { EdgeInferError, isEdgeInferError, messageOf } from '../errors.js';
import { diskError, writingTo } from './disk-errors.js';
import { resolveInside } from './package-paths.js';

export const DEFAULT_MAX_EXPANDED_BYTES = 4 * 1024 ** 3;

export type ArchiveKind = 'tar' | 'zip';

export function archiveKind(file: string): ArchiveKind | undefined {
  const name = file.toLowerCase();
  if (name.endsWith('.zip')) return 'zip';
  if (name.endsWith('.tar.gz') || name.endsWith('.tgz') || name.endsWith('.tar')) return 'tar';
  return undefined;
}

export async function unpackArchive(archive: string, destination: string, maxBytes = DEFAULT_MAX_EXPANDED_BYTES): Promise<void> {
  const kind = archiveKind(archive);
  if (!kind) throw new EdgeInferError('EI_UNPACK_FAILED', [archive, 'not a .tar.gz, .tgz, .tar or .zip file']);
  const temporary = `${destination}${PARTIAL_UNPACK_MARK}${process.pid}`;
  try {
    await rm(temporary, { recursive: true, force: true });
    await writingTo(path.dirname(destination), path.basename(archive), () => mkdir(temporary, { recursive: true }));
    await (kind === 'tar' ? unpackTar : unpackZip)(archive, temporary, maxBytes);
    await rename(temporary, destination);
  } catch (error) {
    await rm(temporary, { recursive: true, force: true }).catch(() => undefined);
    if (isEdgeInferError(error)) throw error;
    throw diskError(error, path.dirname(destination), path.basename(archive)) ?? new EdgeInferError('EI_UNPACK_FAILED', [path.basename(archive), messageOf(error)], error);
  }
}

/** Marks an unpack under way: `packages/<sha256>.partial-<pid>`. One left by a killed process is garbage. */
export const PARTIAL_UNPACK_MARK = '.partial-';

function refuse(archive: string, why: string): never {
  throw unpackRefused(archive, why);
}

/**
 * The archive is read as a stream: the file, gunzip (when it is compressed), a counter of the bytes gunzip
 * produced, then tar's unpacker, each waiting for the next to take more. (tar's own file reading takes a small
 * archive whole and inflates it in one go: a 5 MB archive of zeros became gigabytes of memory.)
 */
async function unpackTar(archive: string, folder: string, maxBytes: number): Promise<void> {
  let declared = 0;
  let problem: EdgeInferError | undefined;
  const tooLarge = () => new EdgeInferError('EI_UNPACK_TOO_LARGE', [path.basename(archive), maxBytes]);
  const source = createReadStream(archive);
  const gunzip = (await isGzip(archive)) ? createGunzip() : undefined;
  const counted = countBytes({ bytes: 0 }, maxBytes, tooLarge);
  // .pipe() forwards neither errors nor destruction: each stage ends the one read from.
  for (const stage of [source, gunzip]) stage?.on('error', (error: Error) => counted.destroy(error));
  (gunzip ? source.pipe(gunzip) : source).pipe(counted);
  const stop = (error: EdgeInferError) => {
    problem ??= error;
    counted.destroy(error);
  };
  const unpack = new tar.Unpack({
    cwd: folder,
    strict: true,
    // The filter sees every entry before it is written; a refused entry stops the whole unpack at once.
    filter: (entryPath, entry) => {
      const type = 'type' in entry ? entry.type : undefined;
      if (type !== 'File' && type !== 'Directory' && type !== 'OldFile') {
        stop(unpackRefused(archive, `entry "${entryPath}" is a ${String(type)}; only files and folders may be packaged`));
      } else if (!isContained(folder, entryPath)) {
        stop(unpackRefused(archive, `entry "${entryPath}" would be written outside the package folder`));
      } else if ((declared += 'size' in entry ? (entry.size ?? 0) : 0) > maxBytes) {
        // The header says so before a byte of it is inflated.
        stop(tooLarge());
      }
      return problem === undefined;
    },
  });
  const finished = new Promise<void>((resolve, reject) => {
    unpack.on('finish', resolve);
    unpack.on('error', reject);
  });
  finished.catch(() => undefined);
  try {
    for await (const chunk of counted) {
      if (problem) break;
      if (!unpack.write(chunk as Buffer)) await Promise.race([once(unpack, 'drain'), finished]);
    }
    if (problem) throw problem;
    unpack.end();
    await finished;
  } catch (error) {
    throw problem ?? error;
  } finally {
    source.destroy();
    gunzip?.destroy();
    counted.destroy();
  }
}

async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/** Passes bytes through, adding them to `counted`, failing with `tooLarge()` once it passes `maxBytes`. */
function countBytes(counted: { bytes: number }, maxBytes: number, tooLarge: () => EdgeInferError): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      counted.bytes += chunk.length;
      if (counted.bytes > maxBytes) done(tooLarge());
      else done(null, chunk);
    },
  });
}

function unpackRefused(archive: string, why: string): EdgeInferError {
  return new EdgeInferError('EI_UNPACK_FAILED', [path.basename(archive), why]);
}

function isContained(folder: string, entryPath: string): boolean {
  if (path.isAbsolute(entryPath) || entryPath.split(/[\\/]/).includes('..')) return false;
  try {
    resolveInside(folder, entryPath);
    return true;
  } catch {
    return false;
  }
}

async function unpackZip(archive: string, folder: string, maxBytes: number): Promise<void> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(archive, { lazyEntries: true, strictFileNames: true, validateEntrySizes: true }, (error, file) =>
      error ? reject(error) : resolve(file),
    ),
  );
  // One count across entries: the cap is on the whole archive.
  const expanded = { bytes: 0 };
  const tooLarge = () => new EdgeInferError('EI_UNPACK_TOO_LARGE', [path.basename(archive), maxBytes]);
  try {
    for (;;) {
      const entry = await new Promise<yauzl.Entry | undefined>((resolve, reject) => {
        zip.once('entry', resolve);
        zip.once('end', () => resolve(undefined));
        zip.once('error', reject);
        zip.readEntry();
      });
      zip.removeAllListeners('entry').removeAllListeners('end').removeAllListeners('error');
      if (!entry) return;
      const name = entry.fileName;
      if (!isContained(folder, name)) refuse(archive, `entry "${name}" would be written outside the package folder`);
      // Unix mode bits live in the high half of the external attributes; 0o120000 marks a symbolic link.
      if (((entry.externalFileAttributes >>> 16) & 0o170000) === 0o120000) {
        refuse(archive, `entry "${name}" is a link; only files and folders may be packaged`);
      }
      const target = path.join(folder, name);
      if (name.endsWith('/')) {
        await mkdir(target, { recursive: true });
        continue;
      }
      await mkdir(path.dirname(target), { recursive: true });
      const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
        zip.openReadStream(entry, (error, s) => (error ? reject(error) : resolve(s))),
      );
      await pipeline(stream, countBytes(expanded, maxBytes, tooLarge), createWriteStream(target));
    }
  } finally {
    zip.close();
  }
}
