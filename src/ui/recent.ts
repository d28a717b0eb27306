/**
 * The rolling list of recent results and errors, newest first: time, source, model, version, latency, and the
 * summary ("3 faces") or the error's code and message; a row says how many a burst left out. It scrolls inside a
 * box of fixed height, so new rows never move the page.
 */
import type { RecentEntry } from '../status/recent-results.js';
import { byId, element } from './dom.js';

/** As many rows as the module keeps (status/recent-results.ts). */
const ROWS = 30;

const body = byId<HTMLTableSectionElement>('recent-rows');
const empty = byId('no-recent');
/** The newest entry shown, so that one received twice (a reconnect) is not listed twice. */
let newest = 0;

/** The entries the module keeps: they replace the list (the module may have restarted and counts ids anew). */
export function replaceRecent(entries: RecentEntry[]): void {
  body.replaceChildren();
  newest = 0;
  addRecent(entries);
}

export function addRecent(entries: RecentEntry[]): void {
  for (const entry of entries) {
    if (entry.id <= newest) continue;
    newest = entry.id;
    body.prepend(rowOf(entry));
  }
  while (body.rows.length > ROWS) body.lastElementChild!.remove();
  empty.hidden = body.rows.length > 0;
}

function rowOf(entry: RecentEntry): HTMLTableRowElement {
  const row = element('tr');
  row.dataset.kind = entry.kind;
  row.dataset.model = entry.model ?? '';
  const time = new Date(entry.at).toLocaleTimeString();
  if (entry.kind === 'skipped') {
    const what = entry.model === null ? 'calls that reached no model' : `from ${entry.model}`;
    const cell = element('td', 'muted', `${entry.count} more ${what} not listed (a few a second are)`);
    cell.colSpan = 5;
    row.append(element('td', '', time), cell);
    return row;
  }
  row.dataset.source = entry.source;
  const outcome = entry.kind === 'result' ? element('td', '', entry.summary) : element('td', 'error', `${entry.error.code}: ${entry.error.message}`);
  row.append(
    element('td', '', time),
    element('td', '', entry.source),
    element('td', '', entry.model),
    element('td', '', entry.version ?? '—'),
    element('td', 'number', `${entry.latencyMs} ms`),
    outcome,
  );
  return row;
}
