/**
 * The desired state (contract section 4): what the module twin's desired properties, or a `--desired` file,
 * ask the module to run. One schema for both sources. Slots are checked one by one, so one bad slot is
 * reported as failed while the others go ahead.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { checkCollect, type CollectSettings } from '../collect/settings.js';
import { BatchingSchema, batchingProblem } from '../engine/batcher.js';
import { AcceleratorSchema, FallbackSchema, GpuOptionsSchema, TargetNameSchema } from '../engine/target.js';
import { TensorLimitsSchema } from '../engine/tensor-limits.js';
import { ImageSchema, PostprocessSchema } from '../models/manifest.js';

/** What names one version of a slot and where it runs: the slot itself, and its candidate. */
const versionFields = {
  version: Type.String({ minLength: 1 }),
  uri: Type.String({ minLength: 1 }),
  sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
  /** The content's size in bytes: a download that brings more is stopped (else the module-wide --max-download). */
  size: Type.Optional(Type.Integer({ minimum: 1 })),
  target: Type.Optional(TargetNameSchema),
  fallback: Type.Optional(FallbackSchema),
  threads: Type.Optional(Type.Integer({ minimum: 1, maximum: 256 })),
  gpu: Type.Optional(GpuOptionsSchema),
  accelerator: Type.Optional(AcceleratorSchema),
  /** Dynamic batching, for a model whose first input dimension is free (README "Model lifecycle"). */
  batching: Type.Optional(BatchingSchema),
  model: Type.Optional(Type.String({ minLength: 1 })),
  image: Type.Optional(ImageSchema),
  postprocess: Type.Optional(PostprocessSchema),
  /** Overrides the package's `limits` (the most a request may ask of the model). */
  limits: Type.Optional(TensorLimitsSchema),
};

/** When a candidate becomes the active version by itself (README "Candidate versions"). */
export const AutoPromoteSchema = Type.Object(
  {
    minAgreement: Type.Number({ minimum: 0, maximum: 1 }),
    minSamples: Type.Integer({ minimum: 1 }),
    /** The candidate's p50 latency over the active version's, on the same inputs. */
    maxLatencyRatio: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  },
  { additionalProperties: false },
);

/** A version shadowed beside the active one: it gets a share of the same inputs and answers nobody. */
export const CandidateSchema = Type.Object(
  {
    ...versionFields,
    /** The share of the active version's inputs the candidate also runs, 0–1 (default 0.1). */
    shadowShare: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Raw outputs agree when no element differs by more than this (default 0.001). */
    tolerance: Type.Optional(Type.Number({ minimum: 0 })),
    autoPromote: Type.Optional(AutoPromoteSchema),
    /** true: the candidate becomes the active version (the fleet-wide promotion, from the twin). */
    promote: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export type CandidateSlot = Static<typeof CandidateSchema>;
export type AutoPromote = Static<typeof AutoPromoteSchema>;

export const ModelSlotSchema = Type.Object({ ...versionFields, candidate: Type.Optional(CandidateSchema) }, { additionalProperties: false });

export type ModelSlot = Static<typeof ModelSlotSchema>;

/** A camera the module pulls frames from (contract section 4; README "Cameras"). */
export const CameraSpecSchema = Type.Object(
  {
    uri: Type.String({ pattern: '^(rtsps?|https?|file)://' }),
    fps: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 60 })),
    model: Type.Optional(Type.String({ minLength: 1 })),
    enabled: Type.Optional(Type.Boolean()),
    /** No frame for this long is a fault (stall), and so is a connection that takes longer. */
    timeoutSeconds: Type.Optional(Type.Number({ minimum: 1, maximum: 600 })),
    /** Overrides `output.minScore` for this camera. */
    minScore: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  },
  { additionalProperties: false },
);

export type CameraSpec = Static<typeof CameraSpecSchema>;

/** Where results go and which camera frames are worth sending. */
export const OutputSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1 })),
    /** A camera frame whose best score is below this sends nothing, and its detections below it are left out. */
    minScore: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** With `minScore`, a camera still sends one frame this often when nothing was found: a heartbeat. */
    heartbeatSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  },
  { additionalProperties: false },
);

export type OutputSettings = Static<typeof OutputSchema>;

/** The desired state as given: slots and cameras are checked one by one (checkSlot, checkCamera), the rest here. */
export interface DesiredState {
  models: Record<string, unknown>;
  defaultModel?: string;
  cameras: Record<string, unknown>;
  output: OutputSettings;
  /** Data collection, checked whole (a bad section refuses the desired state, as `output` does); absent: off. */
  collect?: CollectSettings;
}

/** Reads the parts of a desired document the lifecycle uses; twin metadata (`$version`, ...) is ignored. */
export function readDesiredState(document: unknown): DesiredState | string {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) return '/: the desired state must be a JSON object';
  const { models = {}, defaultModel, cameras = {}, output = {}, collect = null } = document as Record<string, unknown>;
  if (!isKeyedObject(models)) return '/models: must be an object keyed by model name';
  if (defaultModel !== undefined && typeof defaultModel !== 'string') return '/defaultModel: must be a string';
  if (!isKeyedObject(cameras)) return '/cameras: must be an object keyed by camera id';
  const outputProblem = Value.Errors(OutputSchema, output).First();
  if (outputProblem) return `/output${outputProblem.path}: ${outputProblem.message}`;
  const collectSettings = collect === null ? undefined : checkCollect(collect);
  if (typeof collectSettings === 'string') return collectSettings;
  return {
    models: present(models),
    ...(defaultModel ? { defaultModel } : {}),
    cameras: present(cameras),
    output: output as OutputSettings,
    ...(collectSettings ? { collect: collectSettings } : {}),
  };
}

function isKeyedObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** null entries are deletions in IoT Hub patches; in a merged state they mean "no such entry". */
function present(entries: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(entries).filter(([, value]) => value !== null));
}

/**
 * The one rule for a model slot's or a camera's name, wherever one is taken (desired state, routes, the store):
 * 1–64 letters, digits, "_" or "-", and not a name every JavaScript object already has (`__proto__`,
 * `constructor`, `toString`, ...), which would read or replace what an object keyed by names inherits.
 */
export function isValidName(name: string): boolean {
  return /^[A-Za-z0-9_-]{1,64}$/.test(name) && !(name in Object.prototype);
}

const NAME_RULE = '1–64 letters, digits, "_" or "-", and not the name of a property every object has (__proto__, constructor, toString, ...)';

/** A slot, checked: the slot or the first problem as "/models/<name>/<path>: message". */
export function checkSlot(name: string, slot: unknown): ModelSlot | string {
  if (!isValidName(name)) return `/models/${name}: a model name is ${NAME_RULE}`;
  const first = Value.Errors(ModelSlotSchema, slot).First();
  if (first) return `/models/${name}${first.path}: ${first.message}`;
  const { batching, candidate } = slot as ModelSlot;
  const batchingWrong = batching && batchingProblem(batching);
  if (batchingWrong) return `/models/${name}/batching${batchingWrong}`;
  const candidateBatchingWrong = candidate?.batching && batchingProblem(candidate.batching);
  if (candidateBatchingWrong) return `/models/${name}/candidate/batching${candidateBatchingWrong}`;
  return slot as ModelSlot;
}

/** A slot's candidate on its own (what a layered deployment sets), checked as checkSlot checks it in a slot. */
export function checkCandidate(name: string, candidate: unknown): CandidateSlot | string {
  const checked = checkSlot(name, { version: '-', uri: '-', candidate });
  return typeof checked === 'string' ? checked : checked.candidate!;
}

/** A camera, checked: the spec or the first problem as "/cameras/<id>/<path>: message". */
export function checkCamera(id: string, spec: unknown): CameraSpec | string {
  if (!isValidName(id)) return `/cameras/${id}: a camera id is ${NAME_RULE}`;
  const first = Value.Errors(CameraSpecSchema, spec).First();
  if (first) return `/cameras/${id}${first.path}: ${first.message}`;
  return spec as CameraSpec;
}

/**
 * JSON merge of an IoT Hub desired patch into the state: objects merge key by key, `null` deletes,
 * anything else replaces.
 */
export function mergePatch(state: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const base = state !== null && typeof state === 'object' && !Array.isArray(state) ? { ...(state as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete base[key];
    // Defined, not assigned: a key named "__proto__" stays a key (to be refused by name) instead of a prototype.
    else Object.defineProperty(base, key, { value: mergePatch(Object.hasOwn(base, key) ? base[key] : undefined, value), enumerable: true, writable: true, configurable: true });
  }
  return base;
}
