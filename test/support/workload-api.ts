/**
 * The IoT Edge workload API on a unix socket (or loopback TCP), as the IoT Edge runtime serves it to a module
 * (api-version 2018-06-28): `GET /trust-bundle`, `POST /modules/<m>/genid/<g>/sign`, which signs with the
 * module's key, and `POST /modules/<m>/genid/<g>/certificate/server`, which issues a server certificate for the
 * asked name, signed by the test CA (with openssl), and answers the expiry it grants.
 */
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { isIP, type AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeCertificate } from './network.js';

export interface WorkloadApi {
  uri: string;
  /** Every request as "<method> <path>". */
  requests: string[];
  /** The certificates issued, in order: serial (hex, as X509Certificate writes it) and the name asked for. */
  issued: Array<{ serialNumber: string; commonName: string }>;
  close(): void;
}

export interface WorkloadApiOptions {
  moduleId: string;
  generationId: string;
  key: string;
  trustBundle: Buffer;
  /** The CA that signs server certificates (normally the trust bundle's); a new one when unset. */
  ca?: { cert: Buffer; key: Buffer };
  /** The lifetime granted to a server certificate, whatever the module asks (the runtime's cap). */
  grantSeconds?: number;
  /** Listen on loopback TCP (`http://127.0.0.1:port`) instead of a unix socket. */
  tcp?: boolean;
}

/** A key and a certificate for `commonName` (as a SAN too, so clients can check it), signed by the CA. */
async function issue(dir: string, ca: { cert: Buffer; key: Buffer }, commonName: string, serial: number): Promise<{ cert: string; key: string }> {
  const file = (name: string) => path.join(dir, `${serial}-${name}`);
  await writeFile(file('ca.pem'), ca.cert);
  await writeFile(file('ca-key.pem'), ca.key);
  await writeFile(file('ext.cnf'), `subjectAltName=${isIP(commonName) ? 'IP' : 'DNS'}:${commonName}\nextendedKeyUsage=serverAuth\n`);
  const run = promisify(execFile);
  await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${commonName}`, '-keyout', file('key.pem'), '-out', file('csr.pem')]);
  await run('openssl', ['x509', '-req', '-in', file('csr.pem'), '-CA', file('ca.pem'), '-CAkey', file('ca-key.pem'), '-set_serial', String(serial), '-days', '1', '-extfile', file('ext.cnf'), '-out', file('cert.pem')]);
  return { cert: await readFile(file('cert.pem'), 'utf8'), key: await readFile(file('key.pem'), 'utf8') };
}

export async function startWorkloadApi(options: WorkloadApiOptions): Promise<WorkloadApi> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-workload-'));
  const socket = path.join(dir, 'workload.sock');
  const requests: string[] = [];
  const issued: WorkloadApi['issued'] = [];
  const modulePath = `/modules/${options.moduleId}/genid/${options.generationId}`;
  const ca = options.ca ?? (await makeCertificate());
  const server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://workload');
      const json = (status: number, body: unknown) => response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (url.searchParams.get('api-version') !== '2018-06-28') return void response.writeHead(400).end();
      if (request.method === 'GET' && url.pathname === '/trust-bundle') {
        json(200, { certificate: options.trustBundle.toString() });
      } else if (request.method === 'POST' && url.pathname === `${modulePath}/sign`) {
        const { keyId, algo, data } = JSON.parse(Buffer.concat(chunks).toString()) as { keyId: string; algo: string; data: string };
        if (keyId !== 'primary' || algo !== 'HMACSHA256') return void response.writeHead(400).end();
        json(200, { digest: createHmac('sha256', Buffer.from(options.key, 'base64')).update(Buffer.from(data, 'base64')).digest('base64') });
      } else if (request.method === 'POST' && url.pathname === `${modulePath}/certificate/server`) {
        const { commonName, expiration } = JSON.parse(Buffer.concat(chunks).toString()) as { commonName?: string; expiration?: string };
        if (!commonName || !expiration || Number.isNaN(Date.parse(expiration))) return void response.writeHead(400).end();
        const serial = 4096 + issued.length;
        issue(dir, ca, commonName, serial).then(
          ({ cert, key }) => {
            issued.push({ serialNumber: serial.toString(16).toUpperCase(), commonName });
            const granted = new Date(Math.min(Date.parse(expiration), Date.now() + (options.grantSeconds ?? 86_400) * 1000));
            json(201, { privateKey: { type: 'key', bytes: key }, certificate: cert, expiration: granted.toISOString() });
          },
          (error: Error) => json(500, { message: error.message }),
        );
      } else {
        response.writeHead(404).end();
      }
    });
  });
  if (options.tcp) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  else await new Promise<void>((resolve) => server.listen(socket, resolve));
  const uri = options.tcp ? `http://127.0.0.1:${(server.address() as AddressInfo).port}` : `unix://${socket}`;
  return { uri, requests, issued, close: () => server.close() };
}
