/**
 * The IoT Edge workload API on a unix socket, as the IoT Edge runtime serves it to a module (api-version
 * 2018-06-28): `GET /trust-bundle` and `POST /modules/<m>/genid/<g>/sign`, which signs with the module's key.
 */
import { createHmac } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface WorkloadApi {
  uri: string;
  /** Every request as "<method> <path>". */
  requests: string[];
  close(): void;
}

export async function startWorkloadApi(options: { moduleId: string; generationId: string; key: string; trustBundle: Buffer }): Promise<WorkloadApi> {
  const socket = path.join(await mkdtemp(path.join(tmpdir(), 'edge-infer-workload-')), 'workload.sock');
  const requests: string[] = [];
  const server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://workload');
      if (url.searchParams.get('api-version') !== '2018-06-28') return void response.writeHead(400).end();
      if (request.method === 'GET' && url.pathname === '/trust-bundle') {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ certificate: options.trustBundle.toString() }));
      } else if (request.method === 'POST' && url.pathname === `/modules/${options.moduleId}/genid/${options.generationId}/sign`) {
        const { keyId, algo, data } = JSON.parse(Buffer.concat(chunks).toString()) as { keyId: string; algo: string; data: string };
        if (keyId !== 'primary' || algo !== 'HMACSHA256') return void response.writeHead(400).end();
        const digest = createHmac('sha256', Buffer.from(options.key, 'base64')).update(Buffer.from(data, 'base64')).digest('base64');
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ digest }));
      } else {
        response.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return { uri: `unix://${socket}`, requests, close: () => server.close() };
}
