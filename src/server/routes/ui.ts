/**
 * `GET /ui`: the LAN status page, and `GET /ui/assets/{file}`: its scripts, compiled from src/ui by the same
 * `tsc` as the service (dist/src/ui). Both load without a key (auth.ts): the page holds no data, it asks for a
 * key and reads everything through the keyed routes (`/ui/events`, `/status`, snapshots, `/score`, activate).
 */
import { readdir, readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { EdgeInferError } from '../../errors.js';
import type { ServiceOptions } from '../app.js';
import { pageHtml } from '../ui/page.js';

/** Where tsc puts the page's scripts, beside this file's own output. */
const ASSETS = new URL('../../ui/', import.meta.url);

export async function uiRoutes(app: FastifyInstance, options: ServiceOptions): Promise<void> {
  // Read once: the set of files is fixed by the build, and a request never names a path of its own.
  const assets = new Map<string, Buffer>();
  for (const file of await readdir(ASSETS).catch(() => [] as string[])) {
    if (file.endsWith('.js')) assets.set(file, await readFile(new URL(file, ASSETS)));
  }
  const html = pageHtml({ keysRequired: options.keys.length > 0 });

  app.get('/ui', async (_request, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      // Our own scripts, styles and images only; frames and drawings come as blob: URLs.
      .header('content-security-policy', "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
      .header('referrer-policy', 'no-referrer')
      .send(html),
  );

  app.get<{ Params: { file: string } }>('/ui/assets/:file', async (request, reply) => {
    const body = assets.get(request.params.file);
    if (!body) throw new EdgeInferError('EI_ROUTE_NOT_FOUND', [request.method, request.url.split('?')[0]!]);
    return reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(body);
  });
}
