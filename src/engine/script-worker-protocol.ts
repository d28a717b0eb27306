/**
 * What an entry script's worker thread and the main thread say to each other (entry-script.ts hosts the worker,
 * script-worker.ts is the worker). Both sides import this file, so the shapes are declared once.
 */
import type { ModelSettings } from '../models/manifest.js';
import type { ImageGeometry } from '../pipeline/image.js';
import { EdgeInferError, ERRORS, recordedError, type ErrorCode } from '../errors.js';
import type { ModelSignature, Tensor } from './tensor.js';

/** What a worker is started with: everything `ctx` holds that is plain data. */
export interface ScriptWorkerData {
  file: string;
  modelName: string;
  version: string;
  dir: string;
  settings: ModelSettings;
  logLevel: string;
  /** The package's model, when it has one: `ctx.model` calls it in the main thread. */
  model?: { file: string; signature: ModelSignature };
  /** When the version has a postprocessor: the worker builds the same one for `ctx.postprocess`. */
  postprocessor?: PostprocessorPlan;
}

/** What a worker needs besides the manifest to build the version's postprocessor. */
export interface PostprocessorPlan {
  inputSize?: { width: number; height: number };
  /** The geometry `ctx.postprocess` maps boxes with: tensors the script made are the model's own pixels. */
  geometry: ImageGeometry;
}

/** A request as the script sees it: the JSON body, or the encoded image and its type. */
export type ScriptInput = { kind: 'json'; body: unknown } | { kind: 'image'; image: Uint8Array; contentType: string };

/** What the script asks of the main thread through `ctx`. */
export type ContextMethod = 'model.run' | 'createSession' | 'session.run' | 'session.release' | 'imageToTensor';

/** An error as it crosses: its code when it is one of ours, its message, stack and cause. */
export interface WireError {
  message: string;
  code?: string;
  stack?: string;
  cause?: WireError;
}

export type Outcome = { ok: true; value: unknown } | { ok: false; error: WireError };

export type ToWorker = ({ type: 'run'; id: number; input: ScriptInput }) | ({ type: 'answer'; id: number } & Outcome);

export type FromWorker =
  | { type: 'ready' }
  /** Importing the script or its `init` failed (threw, or it has no `run`); the main thread ends the worker. */
  | { type: 'load-failed'; step: 'import' | 'init'; error: WireError }
  | ({ type: 'result'; id: number } & Outcome)
  | { type: 'call'; id: number; method: ContextMethod; args: unknown[] }
  /** A promise rejection nobody handled in the script: logged, and the worker goes on. */
  | { type: 'rejection'; error: WireError };

export function toWire(error: unknown, depth = 0): WireError {
  if (!(error instanceof Error)) return { message: String(error) };
  return {
    message: error.message,
    ...(error instanceof EdgeInferError ? { code: error.code } : {}),
    ...(error.stack ? { stack: error.stack } : {}),
    ...(error.cause !== undefined && depth < 4 ? { cause: toWire(error.cause, depth + 1) } : {}),
  };
}

/** Ours come back as our coded errors; anything else as a plain Error with its stack and cause. */
export function fromWire(wire: WireError): Error {
  if (wire.code !== undefined && wire.code in ERRORS) return recordedError(wire.code as ErrorCode, wire.message);
  const error = new Error(wire.message, wire.cause ? { cause: fromWire(wire.cause) } : undefined);
  if (wire.stack) error.stack = wire.stack;
  return error;
}

/**
 * Tensors as plain `{type, dims, data}`: ONNX Runtime's Tensor keeps its data behind a getter, which a message
 * would not carry.
 */
export function plainTensors(tensors: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, { type: t.type, dims: [...t.dims], data: t.data }]));
}

/**
 * The buffers of tensors the sender made for this message and keeps no reference to, to transfer rather than
 * copy: only a typed array that spans its whole buffer (a slice of a larger one, or of Node's pool, is copied).
 */
export function transferablesOf(tensors: Record<string, Tensor>): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const { data } of Object.values(tensors)) {
    if (data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) buffers.add(data.buffer);
  }
  return [...buffers];
}
