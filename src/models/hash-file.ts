/** The sha256 of a file, streamed: used to check local models, resume downloads, and print hashes (CLI). */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** A sha256 fed with what the file holds: digest it, or go on feeding it (a resumed download). */
export async function hashFile(file: string): Promise<Hash> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash;
}
