/**
 * TLS for the REST API: on IoT Edge the real program asks the workload API for a server certificate (signed by
 * the test CA, granted a few seconds), serves HTTPS with it, renews it at 80% of its lifetime and swaps it in
 * while a client keeps a connection open. The settings that choose the source are checked without a process.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { Agent, get } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import test from 'ava';
import { parseSettings, type Settings } from '../src/config/settings.js';
import { chooseTlsSource } from '../src/server/tls.js';
import { makeCertificate } from './support/network.js';
import { startProgram } from './support/program.js';
import { startWorkloadApi, type WorkloadApiOptions } from './support/workload-api.js';

const KEY = Buffer.from('module-key-for-tests-0123456789ab').toString('base64');

/** What the IoT Edge runtime sets; edgeHub is not there (the REST API does not need it). */
function iotEdgeEnv(workloadUri: string): NodeJS.ProcessEnv {
  return {
    EDGE_INFER_CONNECTION_STRING: '',
    IOTEDGE_WORKLOADURI: workloadUri,
    IOTEDGE_DEVICEID: 'gateway-1',
    IOTEDGE_MODULEID: 'edge-infer',
    IOTEDGE_MODULEGENERATIONID: 'gen-7',
    IOTEDGE_IOTHUBHOSTNAME: 'hub.example',
    IOTEDGE_AUTHSCHEME: 'sasToken',
    IOTEDGE_GATEWAYHOSTNAME: '127.0.0.1:1',
  };
}

/** GET through the agent (keep-alive) or a new connection; the certificate the server showed, and the socket. */
function fetchOver(url: string, options: { agent: Agent } | { ca: Buffer }): Promise<{ status: number; serial: string; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { ...options, ...('ca' in options ? { agent: false } : {}) }, (response) => {
      const socket = response.socket as TLSSocket;
      const serial = socket.getPeerCertificate().serialNumber;
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, serial, socket }));
    });
    request.on('error', reject);
  });
}

async function withWorkloadProgram(options: Partial<WorkloadApiOptions>, run: (url: string, workload: Awaited<ReturnType<typeof startWorkloadApi>>, program: Awaited<ReturnType<typeof startProgram>>, ca: Buffer) => Promise<void>) {
  const ca = await makeCertificate();
  const workload = await startWorkloadApi({ moduleId: 'edge-infer', generationId: 'gen-7', key: KEY, trustBundle: ca.cert, ca, ...options });
  const program = await startProgram([], iotEdgeEnv(workload.uri));
  try {
    await run(program.url, workload, program, ca.cert);
  } finally {
    await program.stop();
    workload.close();
  }
}

test('on IoT Edge the workload certificate is served, renewed, and swapped in while a kept-alive connection goes on', async (t) => {
  await withWorkloadProgram({ grantSeconds: 5 }, async (url, workload, program, ca) => {
    t.true(url.startsWith('https://127.0.0.1:'));
    const start = await program.waitForLog((l) => l.tls === 'workload');
    t.is(start.commonName, '127.0.0.1');
    t.true(workload.requests.some((r) => r === 'POST /modules/edge-infer/genid/gen-7/certificate/server?api-version=2018-06-28'));
    const first = workload.issued[0]!.serialNumber;

    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca });
    const before = await fetchOver(`${url}/`, { agent });
    t.is(before.status, 200);
    t.is(before.serial, first, 'the first connection sees the first certificate (checked against the test CA)');

    await program.waitForLog((l) => l.msg === 'the REST API certificate was renewed; new connections get it', 15_000);
    const kept = await fetchOver(`${url}/`, { agent });
    t.is(kept.status, 200);
    t.is(kept.socket, before.socket, 'the same connection carried the request after the swap');
    t.is(kept.serial, first);

    const fresh = await fetchOver(`${url}/`, { ca });
    t.is(fresh.status, 200);
    t.not(fresh.serial, first, 'a new connection sees a renewed certificate');
    t.true(workload.issued.slice(1).some((c) => c.serialNumber === fresh.serial));
    agent.destroy();

    // The workload API goes away: renewal fails, is logged and retried, and the certificate in force serves on.
    workload.close();
    const failed = await program.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('renewing the REST API certificate failed'), 15_000);
    t.is(failed.code, 'EI_TLS_CERTIFICATE');
    t.is((await fetchOver(`${url}/`, { ca })).status, 200);
  });
});

test('the workload API over http://host:port serves the certificate too', async (t) => {
  await withWorkloadProgram({ tcp: true }, async (url, workload, _program, ca) => {
    t.true(workload.uri.startsWith('http://127.0.0.1:'));
    const answer = await fetchOver(`${url}/`, { ca });
    t.is(answer.status, 200);
    t.is(answer.serial, workload.issued[0]!.serialNumber);
  });
});

test('certificate files replaced on disk are swapped in once both halves match; open connections go on', async (t) => {
  const [first, second] = [await makeCertificate(), await makeCertificate()];
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-tls-files-'));
  const [certFile, keyFile] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
  await writeFile(certFile, first.cert);
  await writeFile(keyFile, first.key);
  const program = await startProgram(['--tls-cert', certFile, '--tls-key', keyFile, '--store', path.join(dir, 'store')]);
  try {
    t.is((await program.waitForLog((l) => l.tls === 'files')).msg, 'the REST API serves HTTPS with --tls-cert and --tls-key, re-read when they change');
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: first.cert });
    const before = await fetchOver(`${program.url}/`, { agent });
    t.is(before.serial, new X509Certificate(first.cert).serialNumber);

    // The certificate first: with the old key it is no pair, so the old one stays until the key follows.
    await writeFile(certFile, second.cert);
    await program.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('the certificate files cannot be used yet'), 10_000);
    t.is((await fetchOver(`${program.url}/`, { ca: first.cert })).status, 200);
    await writeFile(keyFile, second.key);
    await program.waitForLog((l) => l.msg === 'the REST API certificate files changed; new connections get them', 10_000);

    const kept = await fetchOver(`${program.url}/`, { agent });
    t.is(kept.socket, before.socket);
    t.is(kept.serial, before.serial);
    t.is((await fetchOver(`${program.url}/`, { ca: second.cert })).serial, new X509Certificate(second.cert).serialNumber);
    agent.destroy();
  } finally {
    await program.stop();
  }
});

test('a workload API that issues no certificate stops start-up with EI_TLS_CERTIFICATE (IoT Edge restarts the module)', async (t) => {
  const error = await t.throwsAsync(startProgram([], iotEdgeEnv('unix:///nonexistent/workload.sock')));
  t.regex(error!.message, /exited with 1.*EI_TLS_CERTIFICATE: No server certificate from the IoT Edge workload API at unix:\/\/\/nonexistent\/workload.sock/s);
});

test('--tls off on IoT Edge serves plain HTTP and says so', async (t) => {
  const workload = await startWorkloadApi({ moduleId: 'edge-infer', generationId: 'gen-7', key: KEY, trustBundle: Buffer.from('') });
  const program = await startProgram(['--tls', 'off'], iotEdgeEnv(workload.uri));
  try {
    t.true(program.url.startsWith('http://'));
    t.is((await program.waitForLog((l) => l.tls === 'off')).msg, 'the REST API serves plain HTTP (--tls off)');
    t.false(workload.requests.some((r) => r.includes('/certificate/server')));
  } finally {
    await program.stop();
    workload.close();
  }
});

test('the --tls setting chooses the source; a mode without its source is a setting error', (t) => {
  const settings = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseSettings(argv, env) as Settings;
  const edge = { IOTEDGE_WORKLOADURI: 'unix:///w.sock', IOTEDGE_MODULEID: 'm', IOTEDGE_MODULEGENERATIONID: 'g' };
  t.deepEqual(chooseTlsSource(settings([])), { kind: 'off', why: 'no certificate source: no --tls-cert/--tls-key and not on IoT Edge' });
  t.is(chooseTlsSource(settings([], edge)).kind, 'workload');
  t.is(settings([], { ...edge, IOTEDGE_GATEWAYHOSTNAME: 'gateway.lan:8883' }).tlsName, 'gateway.lan');
  t.is(settings(['--tls-name', 'camera-box.lan'], edge).tlsName, 'camera-box.lan');
  t.is(chooseTlsSource(settings([], { ...edge, EDGE_INFER_TLS: 'off' })).kind, 'off');
  t.throws(() => chooseTlsSource(settings(['--tls', 'files'])), { message: /--tls files needs --tls-cert and --tls-key/ });
  t.throws(() => chooseTlsSource(settings(['--tls', 'workload'])), { message: /--tls workload needs the IoT Edge runtime/ });
  t.throws(() => parseSettings(['--tls', 'on'], {}), { message: /--tls must be auto, workload, files or off/ });
});
