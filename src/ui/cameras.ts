/**
 * One tile per camera: status, fps, dropped frames, last error, and its last scored frame with the detections
 * drawn (the `/cameras/{id}/snapshot` route), fetched with the key every REFRESH_MS while the tab is visible.
 */
import type { CameraStatus } from '../status/store.js';
import { request } from './api.js';
import { byId, element, Facts, setBadge, titledCard, when } from './dom.js';

const REFRESH_MS = 3000;

interface Tile {
  node: HTMLElement;
  badge: HTMLElement;
  facts: Facts;
  image: HTMLImageElement;
  caption: HTMLElement;
  /** The blob: URL shown now, released when the next frame replaces it. */
  url: string | null;
}

const tiles = new Map<string, Tile>();
const container = byId('cameras');

export function renderCameras(cameras: Record<string, CameraStatus>): void {
  byId('no-cameras').hidden = Object.keys(cameras).length > 0;
  for (const [id, tile] of tiles) {
    if (!(id in cameras)) {
      if (tile.url) URL.revokeObjectURL(tile.url);
      tile.node.remove();
      tiles.delete(id);
    }
  }
  for (const [id, camera] of Object.entries(cameras)) {
    const tile = tiles.get(id) ?? createTile(id);
    tile.node.dataset.status = camera.status;
    setBadge(tile.badge, camera.status, camera.status === 'streaming' ? 'good' : camera.status === 'failed' || camera.status === 'backoff' ? 'bad' : 'busy');
    tile.facts.set('Frames/s', camera.fps.toFixed(1));
    tile.facts.set('Dropped', String(camera.dropped));
    tile.facts.set('Last frame', when(camera.lastFrameAt));
    tile.facts.set('Last error', camera.error ? `${camera.error.code}: ${camera.error.message}` : '—');
  }
}

function createTile(id: string): Tile {
  const { node, title, badge } = titledCard('camera', id);
  const image = element('img', 'frame');
  image.alt = `Camera ${id}: the last scored frame, with what the model found drawn on it`;
  const caption = element('p', 'line muted');
  const facts = new Facts();
  node.append(title, image, caption, facts.node);
  container.append(node);
  const tile: Tile = { node, badge, facts, image, caption, url: null };
  tiles.set(id, tile);
  return tile;
}

async function refresh(id: string, tile: Tile): Promise<void> {
  const response = await request(`/cameras/${encodeURIComponent(id)}/snapshot`).catch(() => undefined);
  if (!response?.ok) {
    tile.caption.textContent = response?.status === 404 ? 'No frame scored yet.' : 'The frame could not be read.';
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  await new Promise((resolve) => {
    tile.image.onload = resolve;
    tile.image.onerror = resolve;
    tile.image.src = url;
  });
  if (tile.url) URL.revokeObjectURL(tile.url);
  tile.url = url;
  tile.node.dataset.frames = String(Number(tile.node.dataset.frames ?? 0) + 1);
  tile.caption.textContent = `Scored by ${response.headers.get('x-model')} ${response.headers.get('x-model-version')}`;
}

/** Refreshes every tile's frame now and every REFRESH_MS after, skipped while the tab is hidden. */
export function startFrameRefresh(): void {
  const tick = async () => {
    if (!document.hidden) await Promise.all([...tiles].map(([id, tile]) => refresh(id, tile)));
    setTimeout(() => void tick(), REFRESH_MS);
  };
  void tick();
}
