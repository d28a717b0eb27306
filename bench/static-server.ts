/**
 * Serves one file over HTTP from its own process, as a model host would: `node static-server.js FILE`
 * prints its port. A child process, so that serving does not share the downloader's event loop.
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const file = process.argv[2]!;
const size = statSync(file).size;
const server = createServer((_request, response) => {
  response.writeHead(200, { 'content-length': size });
  createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(response);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
