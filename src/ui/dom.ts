/** Small DOM helpers: elements are built once and their text updated in place, so focus and layout stay put. */

export function element<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

/** A `<dl>` whose values can be set by key; rows are created on first use and kept. */
export class Facts {
  readonly node: HTMLDListElement;
  readonly #values = new Map<string, HTMLElement>();

  constructor(node: HTMLDListElement = element('dl', 'facts')) {
    this.node = node;
  }

  set(label: string, value: string): void {
    let dd = this.#values.get(label);
    if (!dd) {
      this.node.append(element('dt', '', label));
      dd = element('dd');
      this.node.append(dd);
      this.#values.set(label, dd);
    }
    if (dd.textContent !== value) dd.textContent = value;
  }
}

/** A card headed by `name` with a status badge; `data-<kind>` carries the name (the page's tests find cards by it). */
export function titledCard(kind: 'camera' | 'model', name: string): { node: HTMLElement; title: HTMLElement; badge: HTMLElement } {
  const node = element('article', 'card');
  node.dataset[kind] = name;
  const title = element('h3', '', name);
  const badge = element('span', 'badge');
  title.append(badge);
  return { node, title, badge };
}

export function setBadge(node: HTMLElement, text: string, tone: 'good' | 'bad' | 'busy'): void {
  node.className = `badge ${tone}`;
  if (node.textContent !== text) node.textContent = text;
}

/** "12:03:04 (5 min ago)" in the viewer's time zone. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const at = new Date(iso);
  const seconds = Math.max(0, Math.round((Date.now() - at.getTime()) / 1000));
  const ago = seconds < 90 ? `${seconds} s ago` : seconds < 5400 ? `${Math.round(seconds / 60)} min ago` : `${Math.round(seconds / 3600)} h ago`;
  return `${at.toLocaleTimeString()} (${ago})`;
}
