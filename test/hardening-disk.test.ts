/**
 * Finding 1 of issue 12: a download must never take the process down or fill the disk. The store sits on a
 * small tmpfs that fills mid-download (the tests run as root and mount it); downloads are capped in size.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import test from 'ava';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { photo, postImage } from './support/fixtures.js';
import { startService, type TestService } from './support/service.js';
import { mountTmpfs } from './support/tmpfs.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const MiB = 1024 * 1024;
/** What the tmpfs holds: a bit more than state.json needs, far less than the download. */
const TMPFS_SIZE = '1m';
const content = randomBytes(16 * MiB);

const tmpfs = await mountTmpfs(TMPFS_SIZE);
const smallStore = tmpfs?.dir;
const onTmpfs = tmpfs ? test.serial : test.serial.skip;

/** Serves `content` without a length (chunked), with its length, or bytes without end. */
let server: Server;
let base: string;
test.before(async () => {
  server = createServer((request, response) => {
    const send = (length: boolean) => {
      response.writeHead(200, length ? { 'content-length': content.length } : {});
      let at = 0;
      const next = () => {
        while (at < content.length) {
          const more = response.write(content.subarray(at, (at += 64 * 1024)));
          if (!more) return void response.once('drain', next);
        }
        response.end();
      };
      next();
    };
    if (request.url?.startsWith('/chunked')) send(false);
    else if (request.url?.startsWith('/sized')) send(true);
    else if (request.url?.startsWith('/endless')) {
      response.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 7);
      const next = () => {
        while (!response.destroyed && response.write(chunk));
        if (!response.destroyed) response.once('drain', next);
      };
      next();
    } else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.after.always(async () => {
  server?.closeAllConnections();
  server?.close();
  await tmpfs?.unmount();
});

const face = (version: string) => ({ version, uri: BUNDLED_MODEL.uri, ...BUNDLED_MODEL.settings });

/** Deploys `slot` over an active version 1 and returns the slot's status once settled. */
async function tryOverVersion1(service: TestService, slot: Record<string, unknown>) {
  service.reconciler.apply({ models: { face: face('1') } });
  await service.reconciler.settled();
  service.reconciler.apply({ models: { face: slot } });
  await service.reconciler.settled();
  return service.status.model('face')!;
}

async function scoreStillWorks(service: TestService): Promise<number> {
  return (await postImage(`${service.url}/models/face/score`, await photo(1))).status;
}

onTmpfs('a disk that fills mid-download fails the version with EI_STORE_FULL, frees what it wrote, and version 1 keeps serving', async (t) => {
  const service = await startService({ storeDir: smallStore!, models: [] });
  try {
    const status = await tryOverVersion1(service, { version: '2', uri: `${base}/chunked/model.onnx`, sha256: sha256(content) });
    t.is(status.status, 'failed');
    t.is(status.error?.code, 'EI_STORE_FULL', status.error?.message);
    t.regex(status.error!.message, /ENOSPC/);
    t.is(status.version, '1');
    t.is(await scoreStillWorks(service), 200);
    const blobs = await readdir(path.join(smallStore!, 'blobs', sha256(content))).catch(() => []);
    t.deepEqual(blobs, [], 'the partial file is removed, so the disk is not left full');
  } finally {
    await service.close();
  }
});

onTmpfs('a download whose length does not fit the free space is refused before a byte is written', async (t) => {
  const service = await startService({ storeDir: smallStore!, models: [] });
  try {
    const status = await tryOverVersion1(service, { version: '3', uri: `${base}/sized/model.onnx`, sha256: sha256(content) });
    t.is(status.error?.code, 'EI_STORE_FULL', status.error?.message);
    t.regex(status.error!.message, new RegExp(`needs ${content.length} bytes and \\d+ are free`));
    t.is(status.version, '1');
    t.is(await scoreStillWorks(service), 200);
  } finally {
    await service.close();
  }
});

test.serial('a download is capped: the slot\'s "size", else the module-wide setting, stops a stream without end', async (t) => {
  const limit = { bytes: 2 * MiB, from: 'setting --max-download' };
  const service = await startService({ models: [], download: { backoffMs: 20, stallMs: 1000, retries: 3, limit } });
  try {
    const endless = { uri: `${base}/endless/model.onnx`, sha256: sha256(content) };
    const capped = await tryOverVersion1(service, { version: '4', ...endless });
    t.is(capped.error?.code, 'EI_DOWNLOAD_TOO_LARGE');
    t.regex(capped.error!.message, /larger than 2097152 bytes \(setting --max-download\)/);
    t.is(capped.version, '1');

    const sized = await tryOverVersion1(service, { version: '5', ...endless, size: 1000 });
    t.is(sized.error?.code, 'EI_DOWNLOAD_TOO_LARGE');
    t.regex(sized.error!.message, /larger than 1000 bytes \(the slot's "size"\)/);
    // An announced length over the size is refused at once, before anything is written.
    const announced = await tryOverVersion1(service, { version: '6', uri: `${base}/sized/model.onnx`, sha256: sha256(content), size: MiB });
    t.is(announced.error?.code, 'EI_DOWNLOAD_TOO_LARGE');
    t.is(await scoreStillWorks(service), 200);
    t.deepEqual(await readdir(path.join(service.storeDir, 'blobs', sha256(content))).catch(() => []), []);
  } finally {
    await service.close();
  }
});
