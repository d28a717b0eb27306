/**
 * The two ways the IoT Edge runtime configures a module: the workload API (`IOTEDGE_*` variables, SAS tokens
 * signed by the runtime, the trust bundle from it) and `EdgeHubConnectionString` with
 * `EdgeModuleCACertificateFile`. Each time the real program starts with only that environment.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { EdgeHub } from './support/edgehub.js';
import { photo } from './support/fixtures.js';
import { makeCertificate } from './support/network.js';
import { until } from './support/until.js';
import { startProgram } from './support/program.js';
import { startWorkloadApi, type WorkloadApi } from './support/workload-api.js';

const KEY = Buffer.from('module-key-for-tests-0123456789ab').toString('base64');

async function scoresThroughHub(t: import('ava').ExecutionContext, env: (hub: EdgeHub, dir: string, cert: Buffer) => Promise<NodeJS.ProcessEnv>): Promise<void> {
  const tls = await makeCertificate();
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-env-'));
  const hub = new EdgeHub({ tls, hubName: 'hub.example', deviceId: 'gateway-1', moduleId: 'edge-infer', key: KEY, desired: {} });
  await hub.start();
  // Nothing from the test's own environment decides the mode: only what IoT Edge would set.
  const program = await startProgram(['--store', path.join(dir, 'store')], { EDGE_INFER_CONNECTION_STRING: '', ...(await env(hub, dir, tls.cert)) });
  try {
    await until(() => (hub.reported as { models?: { face?: { status: string } } }).models?.face?.status === 'active', 'an active model reported', { describe: () => hub.reported });
    await hub.sendInput('score', await photo(3), { '$.ct': 'image/jpeg' });
    const [answer] = await hub.waitForOutputs(1);
    t.is(answer!.output, 'results');
    t.is((JSON.parse(answer!.body.toString()) as { result: { detections: unknown[] } }).result.detections.length, 3);
  } finally {
    await program.stop();
    await hub.stop();
  }
}

test('IOTEDGE_* variables: the workload API signs the tokens and gives the trust bundle', async (t) => {
  let workload: WorkloadApi | undefined;
  await scoresThroughHub(t, async (hub, _dir, cert) => {
    workload = await startWorkloadApi({ moduleId: 'edge-infer', generationId: 'gen-7', key: KEY, trustBundle: cert });
    return {
      IOTEDGE_WORKLOADURI: workload!.uri,
      IOTEDGE_DEVICEID: 'gateway-1',
      IOTEDGE_MODULEID: 'edge-infer',
      IOTEDGE_MODULEGENERATIONID: 'gen-7',
      IOTEDGE_IOTHUBHOSTNAME: 'hub.example',
      IOTEDGE_AUTHSCHEME: 'sasToken',
      IOTEDGE_GATEWAYHOSTNAME: `127.0.0.1:${hub.port}`,
    };
  }).finally(() => workload?.close());
  t.true(workload!.requests.some((r) => r.startsWith('GET /trust-bundle')));
  t.true(workload!.requests.some((r) => r.startsWith('POST /modules/edge-infer/genid/gen-7/sign')));
});

test('EdgeHubConnectionString and EdgeModuleCACertificateFile', async (t) => {
  await scoresThroughHub(t, async (hub, dir, cert) => {
    const caFile = path.join(dir, 'edge-ca.pem');
    await writeFile(caFile, cert);
    return { EdgeHubConnectionString: hub.connectionString, EdgeModuleCACertificateFile: caFile };
  });
});
