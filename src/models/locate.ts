/**
 * Turns what a user names as a model (a path, a file:// URI, an http(s) URI) into a local file or folder
 * that readModelPackage() can open. Downloads and unpacked archives go to the store, content-addressed by
 * sha256, so the same archive is never unpacked twice.
 */
import { access, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EdgeInferError } from '../errors.js';
import { downloadVerified, type DownloadOptions } from './download.js';
import { hashFile } from './hash-file.js';
import { archiveKind, unpackArchive } from './unpack.js';

export interface ModelLocation {
  /** A path, `file://`, `http://` or `https://` URI. */
  uri: string;
  /** Required for http(s): the download is refused unless it hashes to this. */
  sha256?: string;
}

export interface LocatedModel {
  /** A `.onnx` file or a package folder. */
  path: string;
  sha256?: string;
}

export interface LocateHooks {
  /** Called when a download starts (not when the store already holds the content). */
  onDownload?: () => void;
  /** Called when the content is at hand and is being checked or unpacked. */
  onVerify?: () => void;
  download?: DownloadOptions;
  /** The most bytes an archive may expand to (setting --max-unpacked). */
  maxUnpackedBytes?: number;
}

export async function locateModel(location: ModelLocation, storeDir: string, hooks: LocateHooks = {}): Promise<LocatedModel> {
  const { uri } = location;
  if (/^https?:\/\//i.test(uri)) {
    if (!location.sha256 || !/^[0-9a-f]{64}$/i.test(location.sha256)) {
      throw new EdgeInferError('EI_CONFIG_INVALID', [`a model downloaded over http(s) needs its sha256 (64 hex characters) to be checked against`]);
    }
    const sha256 = location.sha256.toLowerCase();
    // Content the store holds is used whatever URI or file name it came under: the hash names it.
    const held = await storedBlob(storeDir, sha256);
    let blob = held;
    if (!blob) {
      hooks.onDownload?.();
      const target = path.join(storeDir, 'blobs', sha256, path.basename(new URL(uri).pathname) || 'model.onnx');
      blob = await downloadVerified(uri, sha256, target, hooks.download);
    }
    hooks.onVerify?.();
    return unpackIfArchive(blob, sha256, storeDir, hooks.maxUnpackedBytes);
  }
  const local = uri.startsWith('file:') ? fileURLToPath(uri) : path.resolve(uri);
  hooks.onVerify?.();
  const sha256 = await verifiedLocal(local, location.sha256);
  if (!archiveKind(local)) return { path: local, sha256 };
  // verifiedLocal always hashes an archive.
  return unpackIfArchive(local, sha256!, storeDir, hooks.maxUnpackedBytes);
}

/** A local file is hashed when its sha256 is given (and must match) or when it is an archive to unpack. */
async function verifiedLocal(file: string, expected: string | undefined): Promise<string | undefined> {
  const isFile = await stat(file).then((s) => s.isFile(), () => false);
  if (!isFile || (!expected && !archiveKind(file))) return expected;
  const actual = (await hashFile(file)).digest('hex');
  // The actual hash is not told: the desired state could name any file the module can read (/proc/self/environ
  // holds keys given in the environment), and the hash would confirm a guess of its content.
  if (expected && actual !== expected.toLowerCase()) throw new EdgeInferError('EI_HASH_MISMATCH', [file, '(not shown for a local file)', expected]);
  return actual;
}

async function unpackIfArchive(file: string, sha256: string, storeDir: string, maxBytes?: number): Promise<LocatedModel> {
  if (!archiveKind(file)) return { path: file, sha256 };
  const folder = path.join(storeDir, 'packages', sha256);
  if (!(await exists(folder))) await unpackArchive(file, folder, maxBytes);
  return { path: folder, sha256 };
}

/** The complete file under `blobs/<sha256>/`, if a download of it finished before. */
async function storedBlob(storeDir: string, sha256: string): Promise<string | undefined> {
  const folder = path.join(storeDir, 'blobs', sha256);
  const entries = await readdir(folder).catch(() => [] as string[]);
  const complete = entries.find((entry) => !entry.endsWith('.partial'));
  return complete === undefined ? undefined : path.join(folder, complete);
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}
