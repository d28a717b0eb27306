/** The real program as an IoT Edge module, connected over MQTT+TLS to the test edgeHub with the given desired properties. */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EdgeHub } from '../test/support/edgehub.js';
import { makeCertificate } from '../test/support/network.js';
import { freePort, startModule, stopChild } from './children.js';

export interface ModuleWithHub {
  hub: EdgeHub;
  module: ChildProcess;
  /** The module's REST API. */
  base: string;
  stop(): Promise<void>;
}

/** Resolves once the module's model is active. */
export async function startModuleWithHub(desired: Record<string, unknown>): Promise<ModuleWithHub> {
  const tls = await makeCertificate();
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-bench-hub-'));
  await writeFile(path.join(dir, 'ca.pem'), tls.cert);
  const hub = new EdgeHub({ tls, hubName: 'hub.example', deviceId: 'bench', moduleId: 'edge-infer', key: Buffer.from('bench-key-0123456789abcdef').toString('base64'), desired });
  await hub.start();
  const port = await freePort();
  const { child } = await startModule(
    ['--port', String(port), '--host', '127.0.0.1', '--store', path.join(dir, 'store')],
    (l) => l.includes('model version active'),
    { env: { EDGE_INFER_CONNECTION_STRING: hub.connectionString, EDGE_INFER_CA_FILE: path.join(dir, 'ca.pem') } },
  );
  return {
    hub,
    module: child,
    base: `http://127.0.0.1:${port}`,
    stop: async () => {
      await stopChild(child);
      await hub.stop();
    },
  };
}
