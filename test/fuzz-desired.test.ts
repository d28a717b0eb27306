/**
 * Fuzzing the desired state (issue 12, point 7): whole documents and IoT Hub twin patches with slots and cameras
 * under odd names, fields of wrong types, twin metadata and unknown keys. The parser (src/config/desired-state.ts,
 * through the twin's merge in src/hub/desired-twin.ts) never throws and never touches Object.prototype; applied to
 * the running service, a bad slot or camera fails with its code (never EI_INTERNAL), the slot it does not name
 * goes on scoring as before, and resident memory comes back near where it started.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { readDesiredFile } from '../src/config/desired-file.js';
import { checkCamera, checkSlot, readDesiredState } from '../src/config/desired-state.js';
import { DesiredTwin } from '../src/hub/desired-twin.js';
import { desiredPatch, fuzzRuns, oddJsonText } from './support/arbitraries.js';
import { faceAnswer, residentMiB, smallPhoto, testResidentMemoryReturns } from './support/fuzz-checks.js';
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
  goodImage = await smallPhoto();
  goodAnswer = await faceAnswer(service.url, goodImage);
  startMiB = residentMiB();
});
test.after.always(() => service?.close());

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

test('a --desired file of any text is read as a state or a problem that names the file, never a throw', async (t) => {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'edge-infer-fuzz-desired-')), 'desired.json');
  const text = fc.oneof(oddJsonText, desiredPatch('face').map((patch) => JSON.stringify(patch)), fc.string({ unit: 'binary', maxLength: 80 }));
  await fc.assert(
    fc.asyncProperty(text, async (content) => {
      await writeFile(file, content);
      const state = await readDesiredFile(file);
      if (typeof state === 'string' && !state.startsWith(file)) throw new Error(`a problem that does not name the file: ${state}`);
    }),
    fuzzRuns(150),
  );
  t.pass();
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
      const after = await faceAnswer(service.url, goodImage);
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

testResidentMemoryReturns(() => startMiB);
