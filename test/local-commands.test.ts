/**
 * The commands that ask the running module on this device (`health`, the image's HEALTHCHECK, and `activate`)
 * reach it whether it serves plain HTTP or HTTPS (on IoT Edge it serves HTTPS by default).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { makeCertificate } from './support/network.js';
import { runProgram, startProgram } from './support/program.js';

const portOf = (url: string) => new URL(url).port;

for (const tls of [false, true]) {
  test(`health and activate reach a module serving ${tls ? 'HTTPS with a certificate for another name' : 'plain HTTP'}`, async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-local-'));
    const files = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
    if (tls) {
      const certificate = await makeCertificate();
      await writeFile(files.cert, certificate.cert);
      await writeFile(files.key, certificate.key);
    }
    const program = await startProgram(['--store', path.join(dir, 'store'), ...(tls ? ['--tls-cert', files.cert, '--tls-key', files.key] : [])]);
    try {
      t.true(program.url.startsWith(tls ? 'https://' : 'http://'), program.url);
      const health = await runProgram(['health', '--port', portOf(program.url)]);
      t.is(health.code, 0, health.stdout);
      const activate = await runProgram(['activate', 'face', '99', '--port', portOf(program.url)]);
      t.is(activate.code, 1);
      t.regex(activate.stdout, /EI_VERSION_NOT_STORED/);
    } finally {
      await program.stop();
    }
  });
}

test('health fails when nothing answers', async (t) => {
  const health = await runProgram(['health', '--port', '9']);
  t.is(health.code, 1);
  t.regex(health.stdout, /cannot reach the module on port 9/);
});
