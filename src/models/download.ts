/**
 * Downloads a model over http(s) into the store, hashing while it streams. The bytes land in a temporary
 * file and are renamed into place only when the sha256 matches: nothing is used before its hash is checked.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fetch from 'node-fetch';
import { EdgeInferError, messageOf } from '../errors.js';

/** A URI shown without its query string (blob SAS tokens live there) or user info. */
export function redactUri(uri: string): string {
  try {
    const url = new URL(uri);
    url.username = '';
    url.password = '';
    url.search = '';
    return url.toString();
  } catch {
    return '(unparseable URI)';
  }
}

export async function downloadVerified(uri: string, expectedSha256: string, targetFile: string): Promise<void> {
  const shown = redactUri(uri);
  await mkdir(path.dirname(targetFile), { recursive: true });
  const partial = `${targetFile}.${randomUUID()}.partial`;
  const hash = createHash('sha256');
  try {
    const response = await fetch(uri);
    if (!response.ok || !response.body) throw new Error(`the server answered ${response.status} ${response.statusText}`);
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(response.body, hashing, createWriteStream(partial));
  } catch (error) {
    await rm(partial, { force: true });
    throw new EdgeInferError('EI_DOWNLOAD_FAILED', [shown, messageOf(error)], error);
  }
  const actual = hash.digest('hex');
  if (actual !== expectedSha256.toLowerCase()) {
    await rm(partial, { force: true });
    throw new EdgeInferError('EI_DOWNLOAD_FAILED', [shown, `sha256 is ${actual}, expected ${expectedSha256}`]);
  }
  await rename(partial, targetFile);
}
