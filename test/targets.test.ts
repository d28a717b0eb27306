/**
 * Local targets on this machine: the CPU, and a GPU whose CUDA provider is (normally, here) missing. The probes
 * are real sessions on each provider; a slot that asks for the GPU falls back visibly or fails with what to do.
 */
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import pino from 'pino';
import { checkSlot } from '../src/config/desired-state.js';
import { Engine, gpuSessionPlace } from '../src/engine/engine.js';
import type { TargetName, TargetProbe } from '../src/engine/target.js';
import { ReportedProperties } from '../src/hub/reported.js';
import { photo, postImage } from './support/fixtures.js';
import { startProgram } from './support/program.js';
import { bundledFace, startService, type TestService } from './support/service.js';

/** Whether onnxruntime-node's CUDA provider library is installed beside its binding (it is not on this machine). */
const cudaInstalled = existsSync(
  path.join(path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so'),
);

let service: TestService;
test.before(async () => {
  service = await startService();
});
test.after.always(() => service?.close());

test('probes run a session on each provider: the CPU runs, the GPU says why it does not', async (t) => {
  const probes = new Map<TargetName, TargetProbe>();
  await new Engine({ onProbe: (name, probe) => probes.set(name, probe) }).probe();
  t.like(probes.get('cpu'), { status: 'available', reason: null });
  t.true((probes.get('cpu')!.details!.cores as number) >= 1);
  t.like(probes.get('fpga'), { status: 'not configured', details: null, reason: null });
  const gpu = probes.get('gpu')!;
  if (cudaInstalled) {
    // With the provider library present, a session either starts on the device or says why (no driver, no device).
    t.true(gpu.status === 'available' || /CUDA provider did not start/.test(gpu.reason ?? ''));
    return;
  }
  // onnxruntime-node lists `cuda` among its backends here all the same: only a session tells the truth.
  t.is(gpu.status, 'unavailable');
  t.regex(gpu.reason ?? '', /the CUDA provider did not start \(.*Failed to load shared library/);
  t.regex(gpu.reason ?? '', /ONNXRUNTIME_NODE_INSTALL=cuda12|built from source/);
});

test.serial('gpu with fallback cpu runs on the CPU and says so: target, requestedTarget and the reason, in /status', async (t) => {
  t.true(await service.deploy({ ...bundledFace, name: 'gpu-or-cpu', target: 'gpu', fallback: 'cpu', gpu: { deviceId: 0, tensorrt: true } }));
  const status = (await (await fetch(`${service.url}/status`)).json()) as {
    runtime: { targets: Record<string, TargetProbe> };
    models: Record<string, { status: string; target: string; requestedTarget: string; targetReason: string | null }>;
  };
  if (cudaInstalled) return void t.pass('a GPU may be present; the fallback is only checked where the provider is missing');
  t.like(status.models['gpu-or-cpu'], { status: 'active', target: 'cpu', requestedTarget: 'gpu' });
  t.regex(status.models['gpu-or-cpu']!.targetReason ?? '', /CUDA provider did not start/);
  t.is(status.runtime.targets.gpu?.status, 'unavailable');
  const a = await postImage(`${service.url}/models/gpu-or-cpu/score`, await photo(2));
  const b = await postImage(`${service.url}/models/face/score`, await photo(2));
  t.deepEqual(await a.json(), await b.json());
});

test.serial('gpu with fallback none fails the slot with how to get the provider; the version serving stays', async (t) => {
  if (cudaInstalled) return void t.pass('only where the provider is missing');
  t.true(await service.deploy({ ...bundledFace, name: 'gpu-only', version: '1' }));
  t.false(await service.deploy({ ...bundledFace, name: 'gpu-only', version: '2', target: 'gpu', fallback: 'none' }));
  const status = service.status.model('gpu-only')!;
  t.like(status, { status: 'failed', version: '1', requestedTarget: 'gpu' });
  t.is(status.error?.code, 'EI_TARGET_UNAVAILABLE');
  t.regex(status.error!.message, /its fallback is "none"/);
  t.regex(status.error!.message, /ONNXRUNTIME_NODE_INSTALL=cuda12|built from source/);
});

test.serial('fpga with no accelerator named falls back to the CPU with the reason', async (t) => {
  t.true(await service.deploy({ ...bundledFace, name: 'no-accelerator', target: 'fpga' }));
  t.like(service.status.model('no-accelerator'), { status: 'active', target: 'cpu', requestedTarget: 'fpga' });
  t.regex(service.status.model('no-accelerator')!.targetReason ?? '', /names no accelerator/);
});

test.serial('the reported properties carry the probes and fallbacks, with no arrays (twins refuse them)', async (t) => {
  await service.deploy({ ...bundledFace, name: 'gpu-or-cpu', target: 'gpu', fallback: 'cpu' });
  const patches: Array<Record<string, unknown>> = [];
  const reported = new ReportedProperties(service.status, pino({ level: 'silent' }), 10);
  reported.attach(async (patch) => void patches.push(patch), {});
  await reported.flush();
  const sent = Object.assign({}, ...patches) as { runtime: { targets: Record<string, TargetProbe> }; models: Record<string, { requestedTarget: string; targetReason: string | null }> };
  t.is(sent.runtime.targets.gpu!.status, cudaInstalled ? sent.runtime.targets.gpu!.status : 'unavailable');
  t.is(sent.models['gpu-or-cpu']!.requestedTarget, 'gpu');
  const arrays: string[] = [];
  const walk = (value: unknown, at: string) => {
    if (Array.isArray(value)) arrays.push(at);
    else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, `${at}/${k}`);
  };
  walk(sent, '');
  t.deepEqual(arrays, []);
  reported.detach();
});

test('GPU slots share a session only when they batch alike, whatever the order of the settings', (t) => {
  const cuda = [{ name: 'cuda', deviceId: 0 }];
  const padded = { maxBatch: 32, maxDelayMicros: 2000 };
  t.not(gpuSessionPlace(cuda, {}), gpuSessionPlace(cuda, { batching: padded }), 'an unbatched slot sends other shapes than a batching one');
  t.not(gpuSessionPlace(cuda, { batching: padded }), gpuSessionPlace(cuda, { batching: { ...padded, maxBatch: 8 } }), 'padded to 8 rows is another shape than 32');
  t.is(gpuSessionPlace(cuda, { batching: padded }), gpuSessionPlace(cuda, { batching: { maxDelayMicros: 2000, maxBatch: 32 } }));
  t.is(gpuSessionPlace(cuda, {}), gpuSessionPlace(cuda, {}));
  t.not(gpuSessionPlace(cuda, {}), gpuSessionPlace([{ name: 'cuda', deviceId: 1 }], {}), 'another device is another session');
});

test('the desired state checks the target fields: an accelerator needs a URL, a GPU takes a device id and tensorrt only', (t) => {
  const slot = { version: '1', uri: '/m.onnx' };
  t.regex(checkSlot('x', { ...slot, target: 'fpga', accelerator: { model: 'face' } }) as string, /^\/models\/x\/accelerator\/url: /);
  t.regex(checkSlot('x', { ...slot, accelerator: { url: 'ftp://server' } }) as string, /^\/models\/x\/accelerator\/url: /);
  t.regex(checkSlot('x', { ...slot, accelerator: { url: 'http://s', timeoutMs: 0 } }) as string, /^\/models\/x\/accelerator\/timeoutMs: /);
  t.regex(checkSlot('x', { ...slot, gpu: { deviceId: -1 } }) as string, /^\/models\/x\/gpu\/deviceId: /);
  t.regex(checkSlot('x', { ...slot, gpu: { memory: 1 } }) as string, /^\/models\/x\/gpu/);
  t.regex(checkSlot('x', { ...slot, target: 'tpu' }) as string, /^\/models\/x\/target: /);
  const good = { ...slot, target: 'fpga', fallback: 'cpu', gpu: { deviceId: 1, tensorrt: true }, accelerator: { url: 'https://s:8998', headers: { authorization: 'Bearer x' }, parameters: { batch: 4, xmodel: 'a' } } };
  t.deepEqual(checkSlot('x', good), good);
});

test('the program probes at start: GET /status lists every target', async (t) => {
  const program = await startProgram(['--store', await mkdtemp(path.join(tmpdir(), 'edge-infer-targets-'))]);
  try {
    const status = (await (await fetch(`${program.url}/status`)).json()) as { runtime: { targets: Record<string, TargetProbe> } };
    t.deepEqual(Object.keys(status.runtime.targets).sort(), ['cpu', 'fpga', 'gpu']);
    t.is(status.runtime.targets.cpu!.status, 'available');
    if (!cudaInstalled) t.is(status.runtime.targets.gpu!.status, 'unavailable');
  } finally {
    await program.stop();
  }
});
