/**
 * The desired state (contract section 4): what the module twin's desired properties, or a `--desired` file,
 * ask the module to run. One schema for both sources. Slots are checked one by one, so one bad slot is
 * reported as failed while the others go ahead.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ImageSchema, PostprocessSchema } from '../models/manifest.js';

export const ModelSlotSchema = Type.Object(
  {
    version: Type.String({ minLength: 1 }),
    uri: Type.String({ minLength: 1 }),
    sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
    target: Type.Optional(Type.Union([Type.Literal('cpu'), Type.Literal('gpu'), Type.Literal('fpga')])),
    fallback: Type.Optional(Type.Union([Type.Literal('cpu'), Type.Literal('none')])),
    threads: Type.Optional(Type.Integer({ minimum: 1, maximum: 256 })),
    accelerator: Type.Optional(Type.Unknown()),
    model: Type.Optional(Type.String({ minLength: 1 })),
    image: Type.Optional(ImageSchema),
    postprocess: Type.Optional(PostprocessSchema),
  },
  { additionalProperties: false },
);

export type ModelSlot = Static<typeof ModelSlotSchema>;

/** The desired state as given: slots are checked separately (checkSlot), the rest here. */
export interface DesiredState {
  models: Record<string, unknown>;
  defaultModel?: string;
}

/** Reads the parts of a desired document the lifecycle uses; twin metadata (`$version`, ...) is ignored. */
export function readDesiredState(document: unknown): DesiredState | string {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) return '/: the desired state must be a JSON object';
  const { models = {}, defaultModel } = document as { models?: unknown; defaultModel?: unknown };
  if (models === null || typeof models !== 'object' || Array.isArray(models)) return '/models: must be an object keyed by model name';
  if (defaultModel !== undefined && typeof defaultModel !== 'string') return '/defaultModel: must be a string';
  // null entries are deletions in IoT Hub patches; in a merged state they mean "no such slot".
  const present = Object.fromEntries(Object.entries(models).filter(([, slot]) => slot !== null));
  return { models: present, ...(defaultModel ? { defaultModel } : {}) };
}

/** A slot, checked: the slot or the first problem as "/models/<name>/<path>: message". */
export function checkSlot(name: string, slot: unknown): ModelSlot | string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) return `/models/${name}: a model name is 1–64 letters, digits, "_" or "-"`;
  const first = Value.Errors(ModelSlotSchema, slot).First();
  if (first) return `/models/${name}${first.path}: ${first.message}`;
  return slot as ModelSlot;
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
    else base[key] = mergePatch(base[key], value);
  }
  return base;
}
