/**
 * Builds a .tar.gz that expands far beyond its size, without ever holding or compressing the expanded bytes:
 * each run of zeros is deflated once, after a full flush (so it refers to nothing before it), and that block
 * is repeated. The result is a valid gzip (trailer CRC and size included) of a valid tar.
 */
import { writeFile } from 'node:fs/promises';
import { constants, crc32, createDeflateRaw } from 'node:zlib';
import * as tar from 'tar';

const MiB = 1024 * 1024;

/** Each entry's size must be a whole number of MiB. */
export async function writeTarGzBomb(file: string, entries: Array<{ name: string; mib: number }>): Promise<void> {
  const deflate = createDeflateRaw({ level: 9 });
  const out: Buffer[] = [];
  deflate.on('data', (chunk: Buffer) => out.push(chunk));
  const compress = async (data: Buffer, flush: number) => {
    deflate.write(data);
    await new Promise<void>((resolve) => deflate.flush(flush, () => resolve()));
    return Buffer.concat(out.splice(0));
  };
  const zeros = Buffer.alloc(MiB);
  const zerosBlock = await compress(zeros, constants.Z_FULL_FLUSH);
  const parts: Buffer[] = [Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])];
  let crc = 0;
  let length = 0;
  const plain = async (data: Buffer) => {
    parts.push(await compress(data, constants.Z_FULL_FLUSH));
    crc = crc32(data, crc);
    length += data.length;
  };
  for (const { name, mib } of entries) {
    const header = new tar.Header({ path: name, mode: 0o644, size: mib * MiB, mtime: new Date(0), type: 'File' });
    header.encode();
    await plain(header.block!);
    for (let i = 0; i < mib; i++) {
      parts.push(zerosBlock);
      crc = crc32(zeros, crc);
    }
    length += mib * MiB;
  }
  const end = Buffer.alloc(1024);
  deflate.end(end);
  await new Promise<void>((resolve) => deflate.once('end', () => resolve()));
  parts.push(Buffer.concat(out.splice(0)));
  crc = crc32(end, crc);
  length += end.length;
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(length % 2 ** 32, 4);
  parts.push(trailer);
  await writeFile(file, Buffer.concat(parts));
}
