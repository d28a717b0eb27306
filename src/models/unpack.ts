/**
 * Unpacks a model archive (.tar.gz, .tgz, .tar, .zip) into a folder, safely: no entry may land outside
 * the folder, links are refused, and the total expanded size is capped (a zip bomb stops at the cap).
 * The archive is unpacked into a temporary sibling and renamed into place only when complete.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import * as tar from 'tar';
import yauzl from 'yauzl';
import { EdgeInferError, messageOf } from '../errors.js';
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
  const temporary = `${destination}.partial-${process.pid}`;
  await rm(temporary, { recursive: true, force: true });
  await mkdir(temporary, { recursive: true });
  try {
    await (kind === 'tar' ? unpackTar : unpackZip)(archive, temporary, maxBytes);
    await rename(temporary, destination);
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    if (error instanceof EdgeInferError) throw error;
    throw new EdgeInferError('EI_UNPACK_FAILED', [path.basename(archive), messageOf(error)], error);
  }
}

function refuse(archive: string, why: string): never {
  throw new EdgeInferError('EI_UNPACK_FAILED', [path.basename(archive), why]);
}

async function unpackTar(archive: string, folder: string, maxBytes: number): Promise<void> {
  let total = 0;
  let problem: string | undefined;
  await tar.x({
    file: archive,
    cwd: folder,
    strict: true,
    // The filter sees every entry before it is written; a refused entry is skipped and the whole unpack fails.
    filter: (entryPath, entry) => {
      const type = 'type' in entry ? entry.type : undefined;
      if (type !== 'File' && type !== 'Directory' && type !== 'OldFile') {
        problem ??= `entry "${entryPath}" is a ${String(type)}; only files and folders may be packaged`;
        return false;
      }
      if (!isContained(folder, entryPath)) {
        problem ??= `entry "${entryPath}" would be written outside the package folder`;
        return false;
      }
      total += 'size' in entry ? (entry.size ?? 0) : 0;
      if (total > maxBytes) {
        problem ??= `it expands to more than ${maxBytes} bytes`;
        return false;
      }
      return true;
    },
  });
  if (problem) refuse(archive, problem);
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
  let total = 0;
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
      const cap = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          total += chunk.length;
          if (total > maxBytes) done(new EdgeInferError('EI_UNPACK_FAILED', [path.basename(archive), `it expands to more than ${maxBytes} bytes`]));
          else done(null, chunk);
        },
      });
      await pipeline(stream, cap, createWriteStream(target));
    }
  } finally {
    zip.close();
  }
}
