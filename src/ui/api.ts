/**
 * The page's requests: the key from the login form rides in the Authorization header of each one, and is kept
 * in sessionStorage (this tab only, gone when it closes); never in a URL or a cookie.
 */
import type { RecentEntry } from '../status/recent-results.js';
import type { RateSeries } from '../status/request-rates.js';
import type { StatusSnapshot } from '../status/store.js';

const KEY_ITEM = 'edge-infer-key';

export interface StatusEvent {
  status: StatusSnapshot;
  /** Versions the model store keeps per model, newest first. */
  stored: Record<string, string[]>;
}

/** What to do with each kind of event on `/ui/events` (routes/ui-events.ts says what each holds). */
export interface EventHandlers {
  status(event: StatusEvent): void;
  /** The entries kept, on open: they replace what the page shows. */
  recent(entries: RecentEntry[]): void;
  /** New entries since. */
  results(entries: RecentEntry[]): void;
  rates(series: RateSeries): void;
}

export const savedKey = (): string | null => sessionStorage.getItem(KEY_ITEM);
export const saveKey = (key: string): void => sessionStorage.setItem(KEY_ITEM, key);
export const forgetKey = (): void => sessionStorage.removeItem(KEY_ITEM);

export function request(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const key = savedKey();
  if (key) headers.set('authorization', `Bearer ${key}`);
  return fetch(path, { ...init, headers, cache: 'no-store' });
}

/** The error text an answer carries (the service's `{error: {code, message}}` body), for showing beside what failed. */
export async function problemOf(response: Response): Promise<string> {
  const body = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
  return body?.error?.message ? `${body.error.code ?? response.status}: ${body.error.message}` : `HTTP ${response.status}`;
}

/**
 * Reads `/ui/events` until it ends, handing each event to its handler. EventSource cannot send a header, so the
 * stream is read with fetch. Resolves when the stream ends; rejects with the answer's status when refused.
 */
export async function readEvents(handlers: EventHandlers, signal: AbortSignal): Promise<void> {
  const response = await request('/ui/events', { signal });
  if (!response.ok || !response.body) throw new Error(String(response.status));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const lines = block.split('\n');
      const name = lines.find((l) => l.startsWith('event: '))?.slice(7) as keyof EventHandlers | undefined;
      const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (name && Object.hasOwn(handlers, name) && data) handlers[name](JSON.parse(data) as never);
    }
  }
}
