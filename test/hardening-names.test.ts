/**
 * Finding 9 of issue 12: slot names that every JavaScript object already has (`__proto__`, `constructor`,
 * `toString`) passed validation, went active, and broke the state file and the activate route.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { checkCamera, checkSlot, mergePatch, readDesiredState } from '../src/config/desired-state.js';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { postJson } from './support/fixtures.js';
import { startService } from './support/service.js';

const RESERVED = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
const slot = { version: '1', uri: BUNDLED_MODEL.uri, ...BUNDLED_MODEL.settings };

test('the one name rule refuses the names every object has, for slots and cameras alike', (t) => {
  for (const name of RESERVED) {
    t.regex(checkSlot(name, slot) as string, /^\/models\/.*not the name of a property every object has/, name);
    t.true(typeof checkCamera(name, { uri: 'rtsp://192.0.2.1/s' }) === 'string', name);
  }
  t.deepEqual(checkSlot('face-2_b', slot), slot);
  t.is(typeof checkCamera('door', { uri: 'rtsp://192.0.2.1/s' }), 'object');
});

test('a twin patch keyed "__proto__" stays a key, to be refused, rather than becoming a prototype', (t) => {
  const merged = mergePatch({ models: { face: slot } }, JSON.parse(`{"models": {"__proto__": ${JSON.stringify(slot)}}}`)) as { models: object };
  t.deepEqual(Object.keys(merged.models), ['face', '__proto__']);
  t.is(Object.getPrototypeOf(merged.models), Object.prototype);
  const desired = readDesiredState(merged);
  t.deepEqual(typeof desired === 'object' && Object.keys(desired.models), ['face', '__proto__']);
});

test('reserved slot names fail as EI_DESIRED_INVALID while "face" serves; the state file and the routes hold', async (t) => {
  const service = await startService({ models: [] });
  try {
    const models = JSON.parse(`{${RESERVED.map((name) => `"${name}": ${JSON.stringify(slot)}`).join(', ')}, "face": ${JSON.stringify(slot)}}`) as Record<string, unknown>;
    service.reconciler.apply({ models });
    await service.reconciler.settled();
    for (const name of RESERVED) {
      t.is(service.status.model(name)?.status, 'failed', name);
      t.is(service.status.model(name)?.error?.code, 'EI_DESIRED_INVALID', name);
    }
    t.is(service.status.model('face')?.status, 'active');
    const state = JSON.parse(await readFile(path.join(service.storeDir, 'state.json'), 'utf8')) as { models: object };
    t.deepEqual(Object.keys(state.models), ['face']);

    for (const name of RESERVED) {
      const activate = await postJson(`${service.url}/models/${name}/activate`, { version: '1' });
      t.is(activate.status, 404, name);
      t.is(((await activate.json()) as { error: { code: string } }).error.code, 'EI_MODEL_NOT_FOUND');
      t.is((await postJson(`${service.url}/models/${name}/score`, { data: [1] })).status, 404, name);
      t.is((await fetch(`${service.url}/v2/models/${name}/ready`)).status, 404, name);
      t.is((await fetch(`${service.url}/cameras/${name}/snapshot`)).status, 404, name);
    }
    t.is((await fetch(`${service.url}/status`)).status, 200);

    // Dropped from the desired state, the refused slots leave the status too (found by fuzz-desired).
    service.reconciler.apply({ models: { face: slot, 'not-a-slot': { version: '1' } } });
    await service.reconciler.settled();
    t.is(service.status.model('not-a-slot')?.error?.code, 'EI_DESIRED_INVALID');
    service.reconciler.apply({ models: { face: slot } });
    await service.reconciler.settled();
    const listed = Object.keys(((await (await fetch(`${service.url}/status`)).json()) as { models: object }).models);
    t.deepEqual(listed, ['face']);
  } finally {
    await service.close();
  }
});
