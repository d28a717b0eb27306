/**
 * One card per model slot: status, the version answering and its load time, target, error, download progress,
 * the request rate and latency chart, and the stored versions with an `activate` button each
 * (POST /models/{name}/activate, the rollback).
 */
import type { RateSeries } from '../status/request-rates.js';
import type { ModelStatus } from '../status/store.js';
import { problemOf, request, type StatusEvent } from './api.js';
import { RateChart } from './chart.js';
import { byId, element, Facts, setBadge, titledCard, when } from './dom.js';

interface Card {
  node: HTMLElement;
  badge: HTMLElement;
  facts: Facts;
  progress: HTMLProgressElement;
  chart: RateChart;
  versions: HTMLUListElement;
  /** What the versions list shows now, to rebuild it only when it changes (keeps keyboard focus). */
  shown: string;
  message: HTMLElement;
}

const cards = new Map<string, Card>();
const container = byId('models');
/** The last series, for a card that appears after it came. */
let lastRates: RateSeries | undefined;

export function renderModels(event: StatusEvent): void {
  const { models } = event.status;
  for (const [name, card] of cards) {
    if (!(name in models)) {
      card.node.remove();
      cards.delete(name);
    }
  }
  for (const [name, model] of Object.entries(models)) {
    const card = cards.get(name) ?? createCard(name);
    const tone = model.status === 'active' ? 'good' : model.status === 'failed' ? 'bad' : 'busy';
    setBadge(card.badge, model.status, tone);
    card.node.dataset.status = model.status;
    card.node.dataset.version = model.version ?? '';
    card.facts.set('Active version', model.version ?? 'none');
    card.facts.set('Load time', model.loadMs === null ? '—' : model.loadMs < 1000 ? `${model.loadMs} ms` : `${(model.loadMs / 1000).toFixed(1)} s`);
    card.facts.set('Desired version', model.desiredVersion ?? '—');
    card.facts.set('Target', targetText(model));
    card.facts.set('Since', when(model.since));
    card.facts.set('Error', model.error ? `${model.error.code}: ${model.error.message}` : '—');
    card.progress.hidden = model.progress === null;
    card.progress.value = model.progress ?? 0;
    renderVersions(name, card, model, event.stored[name] ?? []);
  }
}

export function renderRates(series: RateSeries): void {
  lastRates = series;
  for (const card of cards.values()) card.chart.draw(series);
}

function targetText(model: ModelStatus): string {
  const target = model.target ?? '—';
  if (model.requestedTarget && model.requestedTarget !== model.target) return `${target} (asked for ${model.requestedTarget}${model.targetReason ? `: ${model.targetReason}` : ''})`;
  return model.targetReason ? `${target} (${model.targetReason})` : target;
}

function createCard(name: string): Card {
  const { node, title, badge } = titledCard('model', name);
  const facts = new Facts();
  // Reserved even when hidden, so that a download starting does not push the card down.
  const progressLine = element('div', 'line');
  const progress = element('progress');
  progress.max = 1;
  progress.setAttribute('aria-label', `${name} download progress`);
  progressLine.append(progress);
  const versions = element('ul', 'versions');
  versions.setAttribute('aria-label', `${name} stored versions`);
  const message = element('p', 'line');
  message.setAttribute('role', 'status');
  const chart = new RateChart(name);
  if (lastRates) chart.draw(lastRates);
  node.append(title, facts.node, progressLine, chart.node, element('p', 'muted', 'Stored versions (activate one to roll back):'), versions, message);
  container.append(node);
  const card: Card = { node, badge, facts, progress, chart, versions, shown: '', message };
  cards.set(name, card);
  return card;
}

function renderVersions(name: string, card: Card, model: ModelStatus, stored: string[]): void {
  // The store records a new version just after it became active: the active one is listed even before that.
  const versions = model.version && !stored.includes(model.version) ? [model.version, ...stored] : stored;
  const shown = `${model.version}|${versions.join(',')}`;
  if (shown === card.shown) return;
  card.shown = shown;
  card.versions.replaceChildren(
    ...versions.map((version) => {
      const item = element('li');
      if (version === model.version) {
        item.append(element('span', 'badge good', `${version} (active)`));
      } else {
        const button = element('button', '', `activate ${version}`);
        button.type = 'button';
        button.addEventListener('click', () => void activate(name, version, card));
        item.append(button);
      }
      return item;
    }),
  );
}

async function activate(name: string, version: string, card: Card): Promise<void> {
  card.message.textContent = `Activating ${version}…`;
  const response = await request(`/models/${encodeURIComponent(name)}/activate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ version }),
  }).catch((error: Error) => error);
  if (response instanceof Error) card.message.textContent = `Could not reach the module: ${response.message}`;
  else card.message.textContent = response.ok ? `${version} is active.` : `Not activated: ${await problemOf(response)}`;
}
