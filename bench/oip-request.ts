/**
 * What every OIP row of the bench shares: the request (the bundled model's input) and the two servers that answer
 * it, the bare node:http floor and the service.
 */
import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { freePort, startChild, startModule } from './children.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export const OIP_INPUT_NAME = 'input:0';
export const OIP_INPUT_SHAPE = [1, 256, 256, 3];

/** A binary-extension infer request for one FP32 input, asking for binary outputs. */
export function oipBinaryBody(name: string, shape: number[], data: Float32Array): { headers: Record<string, string>; body: Buffer } {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const header = Buffer.from(
    JSON.stringify({ inputs: [{ name, shape, datatype: 'FP32', parameters: { binary_data_size: bytes.length } }], parameters: { binary_data_output: true } }),
  );
  return { headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) }, body: Buffer.concat([header, bytes]) };
}

/**
 * The bare server and the service side by side, each a child process run with `nodeFlags` (the service also with
 * the V8 flag `npm start` gives it, README "Performance", and `serviceFlags`), serving the bundled model.
 */
export async function startOipServers(nodeFlags: string[] = [], serviceFlags: string[] = []): Promise<{ bare: OipServer; service: OipServer }> {
  const bare = await startBareServer(nodeFlags);
  const port = await freePort();
  const store = path.join(tmpdir(), 'edge-infer-bench');
  const service = await startModule(['--port', String(port), '--host', '127.0.0.1', '--store', store], (l) => l.includes('model version active'), {
    nodeFlags: [...nodeFlags, ...serviceFlags],
  });
  return {
    bare,
    service: { child: service.child, url: `http://127.0.0.1:${port}/v2/models/face/infer`, origin: `http://127.0.0.1:${port}` },
  };
}

/** The bare node:http server (bare-server.ts) with the bundled model, run with `nodeFlags`. */
export async function startBareServer(nodeFlags: string[] = []): Promise<OipServer> {
  const { child, line } = await startChild([...nodeFlags, path.join(here, 'bare-server.js'), BUNDLED_MODEL.uri], (l) => /^\d+$/.test(l));
  return { child, url: `http://127.0.0.1:${line}/`, origin: `http://127.0.0.1:${line}` };
}

export interface OipServer {
  child: ChildProcess;
  /** Where its OIP binary infer requests go. */
  url: string;
  /** Its scheme, host and port. */
  origin: string;
}
