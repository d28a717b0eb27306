/**
 * A real HTTP server for model downloads, with the faults the lifecycle must survive: ranges (or none), a
 * connection cut half-way, a stream that stalls, a missing file. Every request is recorded.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault = 'none' | 'cut-once' | 'stall-once' | 'no-ranges';

export interface ServedFile {
  body: Buffer;
  fault?: Fault;
}

export interface FileServer {
  url: string;
  files: Map<string, ServedFile>;
  /** Every request as "<path> <range header or ->". */
  requests: string[];
  close(): Promise<void>;
}

export async function startFileServer(): Promise<FileServer> {
  const files = new Map<string, ServedFile>();
  const requests: string[] = [];
  const faultsUsed = new Set<string>();
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]!;
    requests.push(`${path} ${request.headers.range ?? '-'}`);
    const file = files.get(path);
    if (!file) {
      response.writeHead(404).end('not found');
      return;
    }
    const fault = faultsUsed.has(path) ? 'none' : (file.fault ?? 'none');
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
    if (range && fault !== 'no-ranges') start = Number(range[1]);
    const body = file.body.subarray(start);
    const headers = { 'content-length': body.length, 'accept-ranges': fault === 'no-ranges' ? 'none' : 'bytes' };
    if (start > 0) response.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${file.body.length - 1}/${file.body.length}` });
    else response.writeHead(200, headers);
    if (fault === 'cut-once' || fault === 'stall-once') {
      faultsUsed.add(path);
      response.write(body.subarray(0, body.length >> 1));
      if (fault === 'cut-once') setTimeout(() => request.socket.destroy(), 20);
      return; // stall-once: never another byte on this response
    }
    response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    files,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
