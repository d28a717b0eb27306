/**
 * Azurite's Blob service (the npm package `azurite`), run as a child process on loopback with its data in a
 * temporary folder, so that a test can stop it (an outage) and start it again on the same port with the same
 * blobs. A container SAS URL is made with the emulator's well-known account key, as a user makes one in Azure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { BlobServiceClient, ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';

const require = createRequire(import.meta.url);
const AZURITE_BLOB = path.join(path.dirname(require.resolve('azurite/package.json')), 'dist/src/blob/main.js');

/** Azurite's development account: public, documented, accepted by nothing but the emulator. */
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  /** The port it listens on (kept across stop and start). */
  port: number;
  /** A container made now, and a SAS URL for it that may create and write blobs (what a device is given). */
  container(name: string): Promise<{ client: ContainerClient; sasUrl: string }>;
  /** Every blob in the container: name → bytes. */
  blobs(client: ContainerClient): Promise<Map<string, Buffer>>;
  /** Stops the process (an outage); the blobs stay in its folder. */
  stop(): Promise<void>;
  /** Starts it again on the same port, with the same folder. */
  start(): Promise<void>;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
}

export async function startAzurite(): Promise<Azurite> {
  const location = await mkdtemp(path.join(tmpdir(), 'edge-infer-azurite-'));
  let child: ChildProcess | undefined;
  let port = 0;
  const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY);

  const launch = async () => {
    const process_ = spawn(process.execPath, [AZURITE_BLOB, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', location, '--silent', '--skipApiVersionCheck', '--disableTelemetry'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = process_;
    let stderr = '';
    process_.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Azurite did not start within 30 s: ${stderr}`)), 30_000);
      process_.once('exit', (code) => reject(new Error(`Azurite exited with ${code}: ${stderr}`)));
      createInterface({ input: process_.stdout! }).on('line', (line) => {
        const listening = /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
        if (listening) {
          clearTimeout(timer);
          resolve(Number(listening[1]));
        }
      });
    });
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    // SIGTERM: Azurite writes its metadata database to the folder before it exits.
    running.kill('SIGTERM');
    await exited;
  };
  await launch();

  return {
    get port() {
      return port;
    },
    container: async (name) => {
      const client = new BlobServiceClient(`http://127.0.0.1:${port}/${ACCOUNT}`, credential).getContainerClient(name);
      await client.create();
      const sas = generateBlobSASQueryParameters(
        { containerName: name, permissions: ContainerSASPermissions.parse('cw'), expiresOn: new Date(Date.now() + 3600_000) },
        credential,
      ).toString();
      return { client, sasUrl: `${client.url}?${sas}` };
    },
    blobs: async (client) => {
      const found = new Map<string, Buffer>();
      for await (const blob of client.listBlobsFlat()) found.set(blob.name, await client.getBlockBlobClient(blob.name).downloadToBuffer());
      return found;
    },
    stop,
    start: launch,
    close: async () => {
      await stop();
      await rm(location, { recursive: true, force: true });
    },
  };
}
