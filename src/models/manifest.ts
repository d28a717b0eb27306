/**
 * `edge-infer.json`, the optional manifest of a model package (contract section 3), and the same fields
 * given inline in a model slot of the desired state. One schema serves both; inline fields win.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { TensorLimitsSchema } from '../engine/tensor-limits.js';

/**
 * Per-channel numbers. IoT Hub twins refuse arrays, so besides a list the twin may give one number
 * (every channel) or a comma-separated string.
 */
const ChannelNumbers = Type.Union([Type.Number(), Type.String(), Type.Array(Type.Number(), { minItems: 1, maxItems: 4 })]);

export const ImageSchema = Type.Object(
  {
    width: Type.Optional(Type.Integer({ minimum: 1, maximum: 8192 })),
    height: Type.Optional(Type.Integer({ minimum: 1, maximum: 8192 })),
    layout: Type.Optional(Type.Union([Type.Literal('NHWC'), Type.Literal('NCHW')])),
    channels: Type.Optional(Type.Union([Type.Literal('RGB'), Type.Literal('BGR')])),
    resize: Type.Optional(Type.Union([Type.Literal('fill'), Type.Literal('contain'), Type.Literal('cover')])),
    mean: Type.Optional(ChannelNumbers),
    std: Type.Optional(ChannelNumbers),
  },
  { additionalProperties: false },
);

const RawSchema = Type.Object({ kind: Type.Literal('raw') }, { additionalProperties: false });

const ClassificationSchema = Type.Object(
  {
    kind: Type.Literal('classification'),
    /** A file in the package (one label per line) or the list itself. */
    labels: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    topK: Type.Optional(Type.Integer({ minimum: 1 })),
    softmax: Type.Optional(Type.Boolean()),
    /** Which output holds the scores; the first output when unset. */
    output: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const BlazefaceSchema = Type.Object(
  {
    kind: Type.Literal('blazeface'),
    minScore: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    iou: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    maxDetections: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const PostprocessSchema = Type.Union([RawSchema, ClassificationSchema, BlazefaceSchema]);

/** The fields a package manifest and an inline model slot share. */
export const ModelSettingsSchema = Type.Object(
  {
    model: Type.Optional(Type.String({ minLength: 1 })),
    image: Type.Optional(ImageSchema),
    postprocess: Type.Optional(PostprocessSchema),
    /** Bounds on what one request may ask of the model (engine/tensor-limits.ts derives the defaults). */
    limits: Type.Optional(TensorLimitsSchema),
    inputSample: Type.Optional(Type.Unknown()),
    outputSample: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false },
);

export type ModelSettings = Static<typeof ModelSettingsSchema>;
export type ImageSettingsInput = Static<typeof ImageSchema>;
export type PostprocessSettings = Static<typeof PostprocessSchema>;
export type ClassificationSettings = Static<typeof ClassificationSchema>;
export type BlazefaceSettings = Static<typeof BlazefaceSchema>;

/**
 * Checks a manifest or inline settings; returns the first problem as "path: message", or undefined.
 * The path names the field to fix, which is what an operator reading a twin status needs.
 */
export function findSettingsProblem(value: unknown): string | undefined {
  const first = Value.Errors(ModelSettingsSchema, value).First();
  if (!first) return undefined;
  return `${first.path || '/'}: ${first.message}`;
}

/** Per-channel numbers in any accepted form, spread to `channels` values. */
export function channelNumbers(value: number | string | number[] | undefined, fallback: number, channels = 3): number[] {
  if (value === undefined) return new Array<number>(channels).fill(fallback);
  const list = typeof value === 'number' ? [value] : typeof value === 'string' ? value.split(',').map(Number) : value;
  if (list.some((n) => !Number.isFinite(n))) throw new RangeError(`"${String(value)}" is not a list of numbers`);
  if (list.length === 1) return new Array<number>(channels).fill(list[0]!);
  if (list.length !== channels) throw new RangeError(`${list.length} values given for ${channels} channels`);
  return list;
}
