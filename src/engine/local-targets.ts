/**
 * The local targets: ONNX Runtime sessions on the CPU, or on a GPU through the TensorRT and CUDA execution
 * providers. Each is probed for real: a session of the tiny probe model is made on the provider and run once.
 */
import { execFile } from 'node:child_process';
import { cpus } from 'node:os';
import { promisify } from 'node:util';
import { messageOf } from '../errors.js';
import { loadOnnxModel, type ExecutionProvider, type LocalSessionSettings, type SessionSettings } from './onnx-session.js';
import { PROBE_FEEDS, PROBE_MODEL } from './probe-model.js';
import { available, unavailable, type GpuOptions, type Target, type TargetName, type TargetProbe } from './target.js';

/** A target whose every session runs with the same providers and settings. */
function sessionTarget(target: TargetName, reason: string | null, settings: SessionSettings): Target {
  const load = (file: string) => loadOnnxModel(file, settings);
  return { running: { target, reason }, load, createSession: load };
}

/** @param reason why a slot that asked for another target runs here, or null when it asked for the CPU. */
export function cpuTarget(settings: LocalSessionSettings = {}, reason: string | null = null): Target {
  return sessionTarget('cpu', reason, { ...settings, providers: ['cpu'] });
}

export function gpuTarget(providers: ExecutionProvider[], settings: LocalSessionSettings = {}): Target {
  return sessionTarget('gpu', null, { ...settings, providers });
}

/** Runs the probe model on `providers`; the error says why the provider cannot run. */
async function tryProviders(providers: ExecutionProvider[]): Promise<void> {
  const model = await loadOnnxModel(PROBE_MODEL, { providers });
  try {
    await model.run(PROBE_FEEDS);
  } finally {
    await model.release();
  }
}

export async function probeCpu(): Promise<TargetProbe> {
  try {
    await tryProviders(['cpu']);
    return available({ cores: cpus().length, model: cpus()[0]?.model.trim() ?? 'unknown' });
  } catch (error) {
    return unavailable(messageOf(error));
  }
}

/** What a device needs for the GPU target, said where the provider is missing. */
export const GPU_HOW_TO =
  process.platform === 'linux' && process.arch === 'x64'
    ? 'the CUDA provider needs the gpu image variant (or onnxruntime-node installed with ONNXRUNTIME_NODE_INSTALL=cuda12), CUDA 12 and cuDNN 9, and the container given the GPU (createOptions HostConfig.DeviceRequests)'
    : `onnxruntime-node has no GPU provider for ${process.platform}-${process.arch} (a Jetson needs ONNX Runtime built from source)`;

export interface GpuProbe {
  probe: TargetProbe;
  /** The providers that ran, in order of preference; empty when none did. */
  providers: ExecutionProvider[];
}

/** TensorRT first when the slot asks for it and it runs, then CUDA; CUDA must run for the GPU to count. */
export async function probeGpu(options: GpuOptions = {}): Promise<GpuProbe> {
  const deviceId = options.deviceId ?? 0;
  const cuda: ExecutionProvider = { name: 'cuda', deviceId };
  try {
    await tryProviders([cuda]);
  } catch (error) {
    return { probe: unavailable(`the CUDA provider did not start (${providerError(error)}); ${GPU_HOW_TO}`), providers: [] };
  }
  const providers: ExecutionProvider[] = [cuda];
  let tensorrt: boolean | string = false;
  if (options.tensorrt) {
    const trt: ExecutionProvider = { name: 'tensorrt', deviceId };
    tensorrt = await tryProviders([trt]).then(() => true, (error: unknown) => `not available: ${providerError(error)}`);
    if (tensorrt === true) providers.unshift(trt);
  }
  const device = await nvidiaSmi(deviceId);
  const names = providers.map((p) => (typeof p === 'string' ? p : p.name)).join(', ');
  return { probe: available({ deviceId, providers: names, tensorrt, ...device }), providers };
}

const run = promisify(execFile);

/** The device's name, memory and driver as nvidia-smi tells them; nothing when it is not installed. */
async function nvidiaSmi(deviceId: number): Promise<Record<string, unknown>> {
  try {
    const { stdout } = await run('nvidia-smi', [`--id=${deviceId}`, '--query-gpu=name,memory.total,driver_version', '--format=csv,noheader,nounits'], { timeout: 5000 });
    const [name, memory, driver] = stdout.trim().split(/\s*,\s*/);
    return { name, memoryMiB: Number(memory), driver };
  } catch {
    return {};
  }
}

/** ONNX Runtime's own words (the load error wraps them), first line only. */
function providerError(error: unknown): string {
  const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
  return messageOf(cause).split('\n')[0]!.trim();
}
