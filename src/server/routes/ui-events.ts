/**
 * `GET /ui/events`: the status page's one live stream (server-sent events), behind the scoring keys. Each
 * `status` event carries the status store's snapshot (what `/status` answers) and the versions the model store
 * keeps for rollback. Changes are coalesced: a burst of store changes (a download's progress, a swap) becomes
 * one event per COALESCE_MS, shared by every open page. A page that reads slowly gets the newest state once it
 * drains, not a queue of old ones.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { ServiceOptions } from '../app.js';

export const COALESCE_MS = 250;
/** A comment line this often keeps proxies and the browser from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

export async function uiEventRoutes(app: FastifyInstance, options: ServiceOptions): Promise<void> {
  const { status } = options;
  const pages = new Set<ServerResponse>();
  const behind = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | undefined;

  const event = () => {
    const snapshot = status.snapshot();
    const stored = Object.fromEntries(Object.keys(snapshot.models).map((name) => [name, options.storedVersions?.(name) ?? []]));
    return `event: status\ndata: ${JSON.stringify({ status: snapshot, stored })}\n\n`;
  };
  const send = (page: ServerResponse, text: string) => {
    if (page.writableNeedDrain) behind.add(page);
    else page.write(text);
  };
  const flush = () => {
    timer = undefined;
    if (pages.size === 0) return;
    const text = event();
    for (const page of pages) send(page, text);
  };
  const onChange = () => {
    timer ??= setTimeout(flush, COALESCE_MS);
  };
  status.on('change', onChange);
  const keepalive = setInterval(() => {
    for (const page of pages) send(page, ': keepalive\n\n');
  }, KEEPALIVE_MS);
  keepalive.unref();

  // Open streams would hold the server's close open (until the keep-alive timeout): they are cut first, and the
  // pages say the module cannot be reached and try again.
  app.addHook('preClose', async () => {
    for (const page of pages) page.destroy();
  });
  app.addHook('onClose', async () => {
    status.off('change', onChange);
    clearInterval(keepalive);
    clearTimeout(timer);
  });

  app.get('/ui/events', async (request, reply) => {
    reply.hijack();
    const page = reply.raw;
    page.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-request-id': request.id,
      // A buffering proxy in front would hold the events back.
      'x-accel-buffering': 'no',
    });
    pages.add(page);
    page.on('drain', () => {
      if (behind.delete(page)) page.write(event());
    });
    // The response's close, not the request's: a request without a body may close as soon as it is read.
    page.on('close', () => {
      pages.delete(page);
      behind.delete(page);
    });
    page.write(`retry: 2000\n\n${event()}`);
  });
}
