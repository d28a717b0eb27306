/** Builds model packages in a temporary folder: as a folder, a .tar.gz and a .zip, as users ship them. */
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import yazl from 'yazl';

export interface PackageFiles {
  /** Files to copy in: name in the package → source path. */
  copy?: Record<string, string>;
  /** Files to write: name in the package → text or JSON value. */
  write?: Record<string, string | object>;
}

export async function makePackageFolder(files: PackageFiles): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-pkg-'));
  for (const [name, source] of Object.entries(files.copy ?? {})) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await copyFile(source, path.join(dir, name));
  }
  for (const [name, content] of Object.entries(files.write ?? {})) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

/** A .tar.gz of the folder's content, written beside it. */
export async function tarGz(folder: string, entries = ['.']): Promise<string> {
  const file = `${folder}.tar.gz`;
  await tar.c({ gzip: true, file, cwd: folder, portable: true }, entries);
  return file;
}

/** A .zip of the given names; `rename` rewrites stored names afterwards (to build hostile archives). */
export async function zip(folder: string, names: string[], rename?: { from: string; to: string }): Promise<string> {
  const archive = new yazl.ZipFile();
  for (const name of names) archive.addFile(path.join(folder, name), name);
  archive.end();
  const chunks: Buffer[] = [];
  for await (const chunk of archive.outputStream) chunks.push(chunk as Buffer);
  let bytes = Buffer.concat(chunks);
  if (rename) {
    // Names sit in the local and central headers; a same-length rewrite keeps every offset valid.
    if (rename.from.length !== rename.to.length) throw new Error('rename must keep the length');
    bytes = Buffer.from(bytes.toString('latin1').split(rename.from).join(rename.to), 'latin1');
  }
  const file = `${folder}.zip`;
  await pipeline(async function* () {
    yield bytes;
  }, createWriteStream(file));
  return file;
}
