/**
 * One model's request rate and mean latency over the last minutes: an inline SVG of fixed size (two lines, each
 * on its own scale, the newest sample at the right edge) and a one-line caption, redrawn from each `rates` event.
 */
import type { RateSeries } from '../status/request-rates.js';
import { element } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
/** The drawing's own units; CSS stretches it to the card's width at a fixed height. */
const WIDTH = 300;
const HEIGHT = 60;
const MARGIN = 3;

export class RateChart {
  readonly node: HTMLElement;
  readonly #model: string;
  readonly #svg: SVGSVGElement;
  readonly #rate: SVGPathElement;
  readonly #latency: SVGPathElement;
  readonly #caption: HTMLElement;
  readonly #text: HTMLElement;

  constructor(model: string) {
    this.#model = model;
    this.node = element('figure', 'rates');
    this.#svg = document.createElementNS(SVG, 'svg');
    this.#svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    this.#svg.setAttribute('preserveAspectRatio', 'none');
    this.#svg.setAttribute('role', 'img');
    this.#rate = this.#line('rate');
    this.#latency = this.#line('latency');
    this.#caption = element('figcaption', 'line muted');
    this.#caption.id = `rates-${model}`;
    this.#text = element('span', '', 'Requests are sampled every few seconds.');
    this.#caption.append(element('span', 'key rate', 'req/s'), element('span', 'key latency', 'mean latency'), this.#text);
    this.#svg.setAttribute('aria-labelledby', this.#caption.id);
    this.node.append(this.#svg, this.#caption);
  }

  draw(series: RateSeries): void {
    const points = series.samples.map((sample) => sample.models[this.#model]);
    const rates = points.map((point) => point?.perSecond ?? 0);
    const latencies = points.map((point) => point?.meanMs ?? null);
    const peak = Math.max(0, ...rates);
    this.#rate.setAttribute('d', pathOf(rates, series.slots, peak));
    this.#latency.setAttribute('d', pathOf(latencies, series.slots, Math.max(0, ...latencies.map((ms) => ms ?? 0))));
    this.#svg.dataset.samples = String(points.filter(Boolean).length);
    this.#svg.dataset.peak = String(peak);
    const minutes = Math.round((series.slots * series.intervalMs) / 60_000);
    const last = points.at(-1);
    this.#text.textContent =
      peak === 0
        ? `No REST or OIP requests in the last ${minutes} min.`
        : `Now ${last?.perSecond ?? 0} req/s, mean ${last?.meanMs ?? '—'} ms · peak ${peak} req/s over ${minutes} min`;
  }

  #line(kind: 'rate' | 'latency'): SVGPathElement {
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('class', kind);
    this.#svg.append(path);
    return path;
  }
}

/** A path through `values` scaled to `top`, placed so that the last one is at the right edge; null breaks the line. */
function pathOf(values: (number | null)[], slots: number, top: number): string {
  const step = WIDTH / Math.max(1, slots - 1);
  const offset = slots - values.length;
  let d = '';
  let drawing = false;
  values.forEach((value, i) => {
    if (value === null) {
      drawing = false;
      return;
    }
    const x = (offset + i) * step;
    const y = HEIGHT - MARGIN - (top > 0 ? (value / top) * (HEIGHT - 2 * MARGIN) : 0);
    d += `${drawing ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)} `;
    drawing = true;
  });
  return d.trim();
}
