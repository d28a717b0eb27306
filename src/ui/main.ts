/**
 * The status page's entry: asks for the key when the module has keys (checked against `/status`), says so when
 * it has none, then follows `/ui/events` and redraws from its events. A lost stream is reopened.
 */
import { forgetKey, readEvents, request, saveKey, savedKey, type StatusEvent } from './api.js';
import { renderCameras, startFrameRefresh } from './cameras.js';
import { byId } from './dom.js';
import { renderHub } from './hub.js';
import { renderModels, renderRates } from './models.js';
import { addRecent, replaceRecent } from './recent.js';
import { startTryIt } from './try-it.js';

const RECONNECT_MS = 2000;
const keysRequired = document.body.dataset.keys === 'required';
const stream = byId('stream');

function render(event: StatusEvent): void {
  renderHub(event.status);
  renderModels(event);
  renderCameras(event.status.cameras);
}

async function follow(): Promise<void> {
  for (;;) {
    const controller = new AbortController();
    try {
      stream.textContent = 'Live';
      await readEvents(
        {
          status: (event) => {
            stream.textContent = 'Live';
            render(event);
          },
          recent: replaceRecent,
          results: addRecent,
          rates: renderRates,
        },
        controller.signal,
      );
      stream.textContent = 'The module closed the live stream; reconnecting…';
    } catch (error) {
      if ((error as Error).message === '401') return showLogin('The key is no longer accepted.');
      stream.textContent = 'The module cannot be reached; reconnecting…';
    }
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}

function showDashboard(): void {
  byId('login').hidden = true;
  byId('dashboard').hidden = false;
  startTryIt();
  startFrameRefresh();
  void follow();
}

function showLogin(problem = ''): void {
  forgetKey();
  byId('dashboard').hidden = true;
  byId('login').hidden = false;
  byId('login-error').textContent = problem;
  byId<HTMLInputElement>('key').focus();
}

/** Whether the module accepts the key now saved (a cheap keyed request). */
async function accepted(): Promise<boolean> {
  const response = await request('/status');
  return response.ok;
}

byId<HTMLFormElement>('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const field = byId<HTMLInputElement>('key');
  saveKey(field.value);
  field.value = '';
  void accepted().then((ok) => (ok ? showDashboard() : showLogin('That key was refused.')));
});

if (!keysRequired) {
  byId('open-note').hidden = false;
  showDashboard();
} else if (savedKey()) {
  void accepted().then((ok) => (ok ? showDashboard() : showLogin()));
} else {
  showLogin();
}
