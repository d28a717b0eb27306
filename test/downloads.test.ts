/** Downloads as an IoT Edge device makes them: through the environment's proxy, to servers with a private CA. */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { downloadVerified } from '../src/models/download.js';
import { ocrClassifierPath } from './support/fixtures.js';
import { makeCertificate, startHttpsServer, startProxy } from './support/network.js';

const fast = { retries: 1, backoffMs: 10, stallMs: 2000 };
let bytes: Buffer;
let sha256: string;
test.before(async () => {
  bytes = await readFile(ocrClassifierPath);
  sha256 = createHash('sha256').update(bytes).digest('hex');
});

const target = async () => path.join(await mkdtemp(path.join(tmpdir(), 'edge-infer-dl-')), 'model.onnx');

/** Runs `work` with proxy variables set, as IoT Edge sets them for a module, and restores them after. */
async function withEnv(env: Record<string, string>, work: () => Promise<void>): Promise<void> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    await work();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

test.serial('https with a private CA: refused without the CA bundle, verified with it', async (t) => {
  const tls = await makeCertificate();
  const server = await startHttpsServer(tls, (_request, response) => response.end(bytes));
  try {
    const refused = await t.throwsAsync(downloadVerified(`${server.url}/m.onnx`, sha256, await target(), fast));
    t.is((refused as { code?: string }).code, 'EI_DOWNLOAD_FAILED');
    t.regex(refused!.message, /certificate/);
    const file = await target();
    await downloadVerified(`${server.url}/m.onnx`, sha256, file, { ...fast, network: { ca: tls.cert } });
    t.deepEqual(await readFile(file), bytes);
  } finally {
    server.close();
  }
});

test.serial('http_proxy carries http downloads, and no_proxy names the hosts that go direct', async (t) => {
  const origin = createServer((_request, response) => response.end(bytes));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const port = (origin.address() as AddressInfo).port;
  const proxy = await startProxy();
  try {
    await withEnv({ http_proxy: proxy.url, no_proxy: 'localhost' }, async () => {
      await downloadVerified(`http://127.0.0.1:${port}/via-proxy.onnx`, sha256, await target(), fast);
      await downloadVerified(`http://localhost:${port}/direct.onnx`, sha256, await target(), fast);
    });
    t.deepEqual(proxy.seen, [`GET http://127.0.0.1:${port}/via-proxy.onnx`]);
  } finally {
    proxy.close();
    origin.close();
  }
});

test.serial('https_proxy tunnels https downloads with CONNECT, the private CA still checked end to end', async (t) => {
  const tls = await makeCertificate();
  const server = await startHttpsServer(tls, (_request, response) => response.end(bytes));
  const proxy = await startProxy();
  try {
    await withEnv({ https_proxy: proxy.url, no_proxy: '' }, async () => {
      const file = await target();
      await downloadVerified(`${server.url}/tunnel.onnx`, sha256, file, { ...fast, network: { ca: tls.cert } });
      t.deepEqual(await readFile(file), bytes);
      await t.throwsAsync(downloadVerified(`${server.url}/untrusted.onnx`, sha256, await target(), fast), { message: /certificate/ });
    });
    t.true(proxy.seen.length >= 2);
    t.true(proxy.seen.every((line) => line === `CONNECT ${new URL(server.url).host}`), JSON.stringify(proxy.seen));
  } finally {
    proxy.close();
    server.close();
  }
});
