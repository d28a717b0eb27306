/**
 * The engine's one seam (contract section 9): where a loaded version's model runs. Three implementations:
 * `cpu` and `gpu` (ONNX Runtime sessions with their execution providers, local-targets.ts) and `fpga`
 * (an accelerator server over the Open Inference Protocol, remote-target.ts). The rest of the module holds a
 * `Target` and never asks which one it is. The target's names and settings are declared here once; the
 * desired-state schema, settings, deploy specs and the store all take them from this file.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { BatchingSettings } from './batcher.js';
import type { Feeds, ModelSignature, Outputs } from './tensor.js';

export const TargetNameSchema = Type.Union([Type.Literal('cpu'), Type.Literal('gpu'), Type.Literal('fpga')]);
export type TargetName = Static<typeof TargetNameSchema>;

/** What runs when the target asked for is missing: the CPU, or nothing (the slot fails). */
export const FallbackSchema = Type.Union([Type.Literal('cpu'), Type.Literal('none')]);
export type Fallback = Static<typeof FallbackSchema>;

/**
 * A slot's `gpu` field: which device, and whether to try TensorRT before CUDA. (onnxruntime-node passes only
 * a device id to these providers; a memory limit cannot be handed through it.)
 */
export const GpuOptionsSchema = Type.Object(
  {
    deviceId: Type.Optional(Type.Integer({ minimum: 0, maximum: 64 })),
    tensorrt: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type GpuOptions = Static<typeof GpuOptionsSchema>;

/**
 * A slot's `accelerator` field: the OIP server that runs it. `headers` and the `tls` files are credentials:
 * they are used for the connection only, never logged or reported.
 */
export const AcceleratorSchema = Type.Object(
  {
    url: Type.String({ pattern: '^https?://' }),
    /** The model's name on the server (default: the slot's name). */
    model: Type.Optional(Type.String({ minLength: 1 })),
    /** The model's version on the server; unset, the server's routes without a version. */
    modelVersion: Type.Optional(Type.String({ minLength: 1 })),
    /** Sent with the repository extension's `load` (a Vitis AI worker's batch size, an xmodel path). */
    parameters: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]))),
    headers: Type.Optional(Type.Record(Type.String(), Type.String())),
    tls: Type.Optional(
      Type.Object(
        { ca: Type.Optional(Type.String()), cert: Type.Optional(Type.String()), key: Type.Optional(Type.String()) },
        { additionalProperties: false },
      ),
    ),
    /** The deadline of one request to the server. */
    timeoutMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 600_000 })),
    /** Retries of idempotent calls (readiness, metadata); inference is never retried on the server. */
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 5 })),
    /** Failures in a row that open the circuit breaker, and how long it stays open before a trial. */
    breakerFailures: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    breakerResetMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 600_000 })),
  },
  { additionalProperties: false },
);
export type AcceleratorSettings = Static<typeof AcceleratorSchema>;

/** What a slot asks of the engine about where it runs, and how (dynamic batching, batcher.ts). */
export interface Placement {
  target?: TargetName;
  fallback?: Fallback;
  threads?: number;
  gpu?: GpuOptions;
  accelerator?: AcceleratorSettings;
  batching?: BatchingSettings;
}

/** One model loaded on a target: the narrow lifecycle load → run → release. */
export interface EngineModel {
  readonly file: string;
  readonly signature: ModelSignature;
  run(feeds: Feeds, outputNames?: readonly string[]): Promise<Outputs>;
  release(): Promise<void>;
}

/** Where a model runs now, and why when it is not where the slot asked (a fallback). */
export interface Running {
  target: TargetName;
  reason: string | null;
}

export interface Target {
  /** Where it runs as loaded; a remote model may move to the CPU and back while it serves (its breaker). */
  readonly running: Running;
  /** Loads one ONNX file on this target (for a remote target, the package's model, checked against the server's). */
  load(file: string): Promise<EngineModel>;
  /** Loads another ONNX file for an entry script, on this target's device (a remote target's local CPU). */
  createSession(file: string): Promise<EngineModel>;
}

/**
 * A target's probe as `runtime.targets` reports it. Every field is always present (null when it does not
 * apply), since reported properties merge: a missing key would leave the previous probe's value in the twin.
 * Details hold no arrays: IoT Hub twins refuse them.
 */
export interface TargetProbe {
  status: 'available' | 'unavailable' | 'not configured';
  details: Record<string, unknown> | null;
  reason: string | null;
}

export const available = (details: Record<string, unknown>): TargetProbe => ({ status: 'available', details, reason: null });
export const unavailable = (reason: string): TargetProbe => ({ status: 'unavailable', details: null, reason });
export const NOT_CONFIGURED: TargetProbe = { status: 'not configured', details: null, reason: null };
