/** The hub link (absent in standalone mode) and the header's runtime line. */
import type { StatusSnapshot } from '../status/store.js';
import { byId, Facts, when } from './dom.js';

const facts = new Facts(byId<HTMLDListElement>('hub'));

export function renderHub(status: StatusSnapshot): void {
  const { runtime } = status;
  byId('runtime').textContent = `version ${runtime.version} · onnxruntime ${runtime.onnxruntime} · up since ${when(runtime.startedAt)}`;
  const hub = runtime.hub;
  facts.set('State', !hub ? 'standalone: no hub link (desired state from a file or flags)' : hub.state === 'connected' ? 'connected' : `not connected (${hub.state})`);
  facts.node.dataset.state = hub?.state ?? 'standalone';
  facts.set('Since', when(hub?.since));
  facts.set('Last twin sync', when(hub?.lastTwinSync));
  facts.set('Last loss', hub?.lastLoss ? `${hub.lastLoss.cause}, ${when(hub.lastLoss.at)}` : '—');
  facts.set('Desired state', status.desired.error ? `${status.desired.source}: ${status.desired.error}` : status.desired.source);
}
