/**
 * `GET /ui/events`: the status page's one live stream (server-sent events), behind the scoring keys.
 * - `status`: the status store's snapshot (what `/status` answers) and the versions the model store keeps for
 *   rollback. A burst of store changes (a download's progress, a swap) becomes one event per COALESCE_MS.
 * - `recent`: the recent scoring results and errors kept (status/recent-results.ts, already limited per model),
 *   on open; then `results`: the new ones, in batches of COALESCE_MS. Each has an id, so a page can drop repeats.
 * - `rates`: request rate and latency per model over the last minutes (status/request-rates.ts), the whole
 *   series at each sample.
 * Events are shared by every open page. A page that reads slowly gets the newest of each once it drains, not a
 * queue of old ones.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { RecentEntry } from '../../status/recent-results.js';
import { RequestRates } from '../../status/request-rates.js';
import type { ServiceOptions } from '../app.js';

export const COALESCE_MS = 250;
/** A comment line this often keeps proxies and the browser from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

export async function uiEventRoutes(app: FastifyInstance, options: ServiceOptions): Promise<void> {
  const { status, recent } = options;
  const rates = new RequestRates(options.metrics);
  const pages = new Set<ServerResponse>();
  const behind = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | undefined;
  let statusChanged = false;
  let entries: RecentEntry[] = [];

  const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
  const statusEvent = () => {
    const snapshot = status.snapshot();
    const stored = Object.fromEntries(Object.keys(snapshot.models).map((name) => [name, options.storedVersions?.(name) ?? []]));
    return event('status', { status: snapshot, stored });
  };
  /** All a page draws from: on open, and for a page that fell behind. */
  const whole = () => statusEvent() + (recent ? event('recent', recent.recent()) : '') + event('rates', rates.series());
  const send = (page: ServerResponse, text: string) => {
    if (page.writableNeedDrain) behind.add(page);
    else page.write(text);
  };
  const broadcast = (text: string) => {
    for (const page of pages) send(page, text);
  };
  const flush = () => {
    timer = undefined;
    const text = (statusChanged ? statusEvent() : '') + (entries.length > 0 ? event('results', entries) : '');
    statusChanged = false;
    entries = [];
    if (text) broadcast(text);
  };
  const schedule = () => {
    if (pages.size > 0) timer ??= setTimeout(flush, COALESCE_MS);
  };
  const onChange = () => {
    statusChanged = true;
    schedule();
  };
  const onEntry = (entry: RecentEntry) => {
    if (pages.size === 0) return;
    entries.push(entry);
    schedule();
  };
  const onSample = () => broadcast(event('rates', rates.series()));
  status.on('change', onChange);
  recent?.on('entry', onEntry);
  rates.on('sample', onSample);
  rates.start();
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
    recent?.off('entry', onEntry);
    rates.off('sample', onSample);
    rates.stop();
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
      if (behind.delete(page)) page.write(whole());
    });
    // The response's close, not the request's: a request without a body may close as soon as it is read.
    page.on('close', () => {
      pages.delete(page);
      behind.delete(page);
    });
    page.write(`retry: 2000\n\n${whole()}`);
  });
}
