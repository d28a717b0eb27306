/**
 * The desired state's `collect` section (README "Data collection"): which calls are kept for retraining, how
 * many, how much disk they may take, and where they are uploaded. Nothing is collected unless it is present.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** A slot name, as the desired state's rule has it (checked again by name when the list is read). */
const SLOT_PATTERN = '^[A-Za-z0-9_-]{1,64}$';

export const CollectSchema = Type.Object(
  {
    /** `all` (the default), or the slots to collect from: a list, or a comma-separated string (twins refuse arrays). */
    models: Type.Optional(
      Type.Union([
        Type.String({ pattern: `^\\s*(all|[A-Za-z0-9_-]{1,64}(\\s*,\\s*[A-Za-z0-9_-]{1,64})*)\\s*$` }),
        Type.Array(Type.String({ pattern: SLOT_PATTERN }), { minItems: 1, maxItems: 256 }),
      ]),
    ),
    /** Which successful calls are kept: every one, a random share, those below a confidence, or a candidate's disagreements. */
    mode: Type.Union([Type.Literal('all'), Type.Literal('sample'), Type.Literal('lowConfidence'), Type.Literal('disagreements')]),
    /** With `sample`: the share of calls kept, 0–1. */
    sampleRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** With `lowConfidence`: a call is kept when its best score is below this (0–1). */
    belowConfidence: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Records kept per clock hour, all slots together; past it calls are skipped and counted (default 1000). */
    maxPerHour: Type.Optional(Type.Integer({ minimum: 0 })),
    /** The local folder's cap in MiB; past it the oldest files are deleted and counted (default 1024). */
    maxDiskMB: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    /** What of the input is kept: the image or JSON body as it came (default), or the tensor the model took. */
    inputs: Type.Optional(Type.Union([Type.Literal('as-received'), Type.Literal('tensor')])),
    /** Where the folder is uploaded: an Azure Blob Storage container's SAS URL (write and create). Without it, files stay local. */
    upload: Type.Optional(Type.Object({ sasUrl: Type.String({ pattern: '^https?://' }) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

export type CollectSection = Static<typeof CollectSchema>;

/** The section with its defaults filled in and the model list read. */
export interface CollectSettings {
  /** undefined: every slot. */
  models: ReadonlySet<string> | undefined;
  mode: CollectSection['mode'];
  sampleRate: number;
  belowConfidence: number;
  maxPerHour: number;
  maxDiskBytes: number;
  inputs: 'as-received' | 'tensor';
  sasUrl: string | undefined;
}

export const COLLECT_DEFAULTS = { maxPerHour: 1000, maxDiskMB: 1024 } as const;

/** The section, checked: its settings, or the first problem as "/collect/<path>: message" (the SAS URL never quoted). */
export function checkCollect(section: unknown): CollectSettings | string {
  const first = Value.Errors(CollectSchema, section).First();
  // The schema's messages name the rule, never the value, so a malformed SAS URL is not repeated back.
  if (first) return `/collect${first.path}: ${first.message}`;
  const given = section as CollectSection;
  if (given.mode === 'sample' && given.sampleRate === undefined) return '/collect/sampleRate: required with mode "sample"';
  if (given.mode === 'lowConfidence' && given.belowConfidence === undefined) return '/collect/belowConfidence: required with mode "lowConfidence"';
  return {
    models: modelList(given.models),
    mode: given.mode,
    sampleRate: given.sampleRate ?? 1,
    belowConfidence: given.belowConfidence ?? 0,
    maxPerHour: given.maxPerHour ?? COLLECT_DEFAULTS.maxPerHour,
    maxDiskBytes: Math.round((given.maxDiskMB ?? COLLECT_DEFAULTS.maxDiskMB) * 1024 * 1024),
    inputs: given.inputs ?? 'as-received',
    sasUrl: given.upload?.sasUrl,
  };
}

function modelList(models: CollectSection['models']): ReadonlySet<string> | undefined {
  if (models === undefined) return undefined;
  const list = typeof models === 'string' ? models.split(',').map((name) => name.trim()) : models;
  return list.includes('all') ? undefined : new Set(list);
}
