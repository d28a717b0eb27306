/**
 * An HTTP camera on loopback, as IP cameras serve them: `/mjpeg`, a `multipart/x-mixed-replace` stream of
 * JPEGs at `fps`, and `/snapshot.jpg`, one JPEG per GET. It can require Basic credentials, and it can freeze:
 * keep its connections open and send nothing (a stalled camera).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HttpCamera {
  url(path: '/mjpeg' | '/snapshot.jpg', credentials?: string): string;
  /** Snapshot GETs answered so far. */
  snapshots: number;
  frozen: boolean;
  close(): Promise<void>;
}

export interface HttpCameraOptions {
  jpeg: Buffer;
  fps?: number;
  /** "user:password" that requests must present. */
  credentials?: string;
}

const BOUNDARY = 'edgeinferframe';

export async function startHttpCamera(options: HttpCameraOptions): Promise<HttpCamera> {
  const fps = options.fps ?? 10;
  const streams = new Set<ServerResponse>();
  const camera: HttpCamera = { url: () => '', snapshots: 0, frozen: false, close: async () => undefined };
  const authorized = (request: IncomingMessage) =>
    !options.credentials || request.headers.authorization === `Basic ${Buffer.from(options.credentials).toString('base64')}`;

  const server = createServer((request, response) => {
    if (!authorized(request)) {
      response.writeHead(401, { 'www-authenticate': 'Basic realm="camera"' }).end();
      return;
    }
    if (request.url === '/snapshot.jpg') {
      if (camera.frozen) return; // never answers
      camera.snapshots++;
      response.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': options.jpeg.length }).end(options.jpeg);
      return;
    }
    if (request.url === '/mjpeg') {
      response.writeHead(200, { 'content-type': `multipart/x-mixed-replace; boundary=${BOUNDARY}`, 'cache-control': 'no-cache' });
      streams.add(response);
      response.on('close', () => streams.delete(response));
      return;
    }
    response.writeHead(404).end();
  });
  const ticker = setInterval(() => {
    if (camera.frozen) return;
    for (const response of streams) {
      response.write(`--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${options.jpeg.length}\r\n\r\n`);
      response.write(options.jpeg);
      response.write('\r\n');
    }
  }, 1000 / fps);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  camera.url = (path, credentials) => `http://${credentials ? `${credentials}@` : ''}127.0.0.1:${port}${path}`;
  camera.close = async () => {
    clearInterval(ticker);
    for (const response of streams) response.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return camera;
}
