/**
 * Fuzzing the desired state (issue 12, point 7): whole documents and IoT Hub twin patches with slots and cameras
 * under odd names, fields of wrong types, twin metadata and unknown keys. The parser (src/config/desired-state.ts,
 * through the twin's merge in src/hub/desired-twin.ts) never throws and never touches Object.prototype; applied to
 * the running service, a bad slot or camera fails with its code (never EI_INTERNAL), the slot it does not name
 * goes on scoring as before, and resident memory comes back near where it started.
 */
import test from 'ava';
import fc from 'fast-check';
import sharp from 'sharp';
import { checkCamera, checkSlot, readDesiredState } from '../src/config/desired-state.js';
import { DesiredTwin } from '../src/hub/desired-twin.js';
import { desiredPatch, fuzzRuns, residentMiB, RESIDENT_GROWTH_MIB } from './support/arbitraries.js';
import { photo, postImage } from './support/fixtures.js';
import { bundledFace, startService, type TestService } from './support/service.js';

/** The slot every case leaves alone, as the desired state names it. */
const FACE_SLOT = { version: bundledFace.version, uri: bundledFace.uri, ...bundledFace.settings };
const BASE = { models: { face: FACE_SLOT } };

let service: TestService;
let goodImage: Buffer;
let goodAnswer: string;
let startMiB: number;

test.before(async () => {
  service = await startService();
  goodImage = await sharp(await photo(1)).resize(480).jpeg().toBuffer();
  goodAnswer = await scoreFace();
  startMiB = residentMiB();
});
test.after.always(() => service?.close());

async function scoreFace(): Promise<string> {
  const response = await postImage(`${service.url}/models/face/score`, goodImage);
  return `${response.status} ${await response.text()}`;
}

/** Nothing a desired state holds may reach the prototype every object shares. */
function prototypeBreach(): string | undefined {
  const polluted = Object.getOwnPropertyNames(Object.prototype).filter((name) => !PROTOTYPE_NAMES.has(name));
  return polluted.length > 0 ? `Object.prototype gained ${polluted.join(', ')}` : undefined;
}
const PROTOTYPE_NAMES = new Set(Object.getOwnPropertyNames(Object.prototype));

test('the parser reads any document and any run of patches without throwing, slot by slot', (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.jsonValue({ maxDepth: 4 }), desiredPatch('face')), fc.array(desiredPatch('face'), { maxLength: 4 }), (document, patches) => {
      const twin = new DesiredTwin();
      const states: Array<ReturnType<DesiredTwin['patch']>> = [twin.replace(document !== null && typeof document === 'object' && !Array.isArray(document) ? (document as Record<string, unknown>) : { document }), readDesiredState(document)];
      for (const patch of patches) states.push(twin.patch(patch));
      for (const state of states) {
        if (state === undefined) continue;
        if (typeof state === 'string') {
          if (!state.startsWith('/')) throw new Error(`a problem that names no path: ${state}`);
          continue;
        }
        for (const [name, slot] of Object.entries(state.models)) {
          const checked = checkSlot(name, slot);
          if (typeof checked === 'string' && !checked.startsWith(`/models/${name}`)) throw new Error(`a slot's problem that names another path: ${checked}`);
        }
        for (const [id, camera] of Object.entries(state.cameras)) checkCamera(id, camera);
      }
      const breach = prototypeBreach();
      if (breach) throw new Error(breach);
    }),
    fuzzRuns(400),
  );
  t.is(twinOutputName(), 'results');
});

/** The output name of a twin fed junk: the default stays when `output.name` is no usable string. */
function twinOutputName(): string {
  const twin = new DesiredTwin();
  twin.replace({ output: { name: 42 } });
  return twin.outputName();
}

test.serial('patches applied to the running service fail only their own slots, with their codes', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(desiredPatch('face'), { minLength: 1, maxLength: 3 }), async (patches) => {
      const twin = new DesiredTwin();
      twin.replace(structuredClone(BASE));
      for (const patch of patches) {
        const state = twin.patch(patch);
        if (state === undefined || typeof state === 'string') continue;
        // A patch that drops the face slot's parent (models: [] then models: {...}) would remove it: the protected slot comes back.
        service.reconciler.apply({ ...state, models: { ...state.models, face: FACE_SLOT } });
        service.cameras.apply(state.cameras, state.output);
      }
      await service.reconciler.settled();
      for (const [name, model] of Object.entries(service.status.snapshot().models)) {
        if (model?.error?.code === 'EI_INTERNAL') throw new Error(`slot ${name}: ${model.error.message}`);
      }
      const breach = prototypeBreach();
      if (breach) throw new Error(breach);
      if ((await fetch(`${service.url}/status`)).status !== 200) throw new Error('GET /status failed');
      const after = await scoreFace();
      if (after !== goodAnswer) throw new Error(`the face slot now answers ${after.slice(0, 300)}`);
    }),
    fuzzRuns(25),
  );
  // Back to the face slot alone: what the fuzzed slots and cameras held is released. (Not checked: the status
  // still lists slots that were only ever invalid, a gap the reconciler's owner has been told of.)
  service.reconciler.apply(BASE);
  service.cameras.apply({}, {});
  await service.reconciler.settled();
  t.deepEqual(service.registry.slots(), ['face']);
  t.deepEqual(Object.keys(service.status.snapshot().cameras), []);
});

test.serial('resident memory returns near its start once the runs are over', (t) => {
  const endMiB = residentMiB();
  t.log(`resident memory: ${startMiB.toFixed(0)} MiB before the runs, ${endMiB.toFixed(0)} MiB after`);
  t.true(endMiB - startMiB < RESIDENT_GROWTH_MIB, `grew by ${(endMiB - startMiB).toFixed(0)} MiB`);
});
