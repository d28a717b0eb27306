/**
 * What one request may ask of a model, checked where every source meets the model (a loaded version's `infer`):
 * REST JSON and images, OIP JSON and binary, edgeHub messages and camera frames alike. A model with free
 * (symbolic) dimensions turns a small request into a large one: PaddleOCR's recogniser answers a 14 MB request
 * with 393 MB of probabilities, and its inference blocks the event loop for seconds. So free dimensions are
 * bounded per model, a zero-sized one is refused before ONNX Runtime sees it, and outputs that would make a
 * response over the limit are refused before the response is built.
 */
import { Type, type Static } from '@sinclair/typebox';
import { EdgeInferError } from '../errors.js';
import { dtypeInfo } from './dtypes.js';
import type { EngineModel } from './target.js';
import { elementCount, isFreeDimension, unitShape, zeroFeeds, type Feeds, type ModelSignature, type Outputs, type TensorSpec } from './tensor.js';

/** A slot's (or a package manifest's) `limits`; every field is optional and has a derived default. */
export const TensorLimitsSchema = Type.Object(
  {
    /** The most elements one input tensor may hold. */
    maxElements: Type.Optional(Type.Integer({ minimum: 1 })),
    /** The largest size of any free dimension of an input. */
    maxDimension: Type.Optional(Type.Integer({ minimum: 1 })),
    /** The largest response the outputs of one request may make, in bytes. */
    maxResponseBytes: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
export type TensorLimitSettings = Static<typeof TensorLimitsSchema>;

/** The `--max-body` default, for loads that are given no body limit (the profiler, benches). */
export const DEFAULT_MAX_BODY = 16 * 1024 ** 2;

/** The limits of one loaded version, resolved once at load. */
export interface TensorLimits {
  /** Per input name: its most elements, and where that figure comes from (said in the refusal). */
  elements: Map<string, { most: number; from: string }>;
  maxDimension: number | undefined;
  maxResponseBytes: number;
  responseFrom: string;
}

/**
 * The most characters one value takes in a JSON response (with its comma): a float32 widened to a double prints
 * up to 17 digits, a sign, a point and an exponent. A response is counted at this width whatever its encoding,
 * so the count is never below what is built.
 */
const JSON_WIDTH: Record<string, number> = { int8: 5, uint8: 4, bool: 6, int16: 7, uint16: 6, int32: 12, uint32: 11 };
const WIDEST = 25;

/**
 * Resolves a version's limits. Where the slot sets no `maxElements`, each input may hold what a body within
 * `maxBody` can carry (its bytes as binary data), and, for a model with free dimensions, may grow over its unit
 * size (every free dimension 1) only as many times as the outputs at unit size fit in the response limit: outputs
 * grow with the input on the models that amplify (PaddleOCR's recogniser: 6,625 values per 8 pixels of width).
 * The unit-size outputs are measured here with one inference of zeros; where the model cannot run at unit size,
 * only the body bound applies.
 */
export async function resolveTensorLimits(model: EngineModel, given: TensorLimitSettings = {}, maxBody = DEFAULT_MAX_BODY): Promise<TensorLimits> {
  const maxResponseBytes = given.maxResponseBytes ?? maxBody;
  const responseFrom = given.maxResponseBytes ? 'the slot\'s "limits": {"maxResponseBytes"}' : 'the body limit --max-body, or the slot\'s "limits": {"maxResponseBytes"}';
  const elements = new Map<string, { most: number; from: string }>();
  const free = model.signature.inputs.filter((input) => freeAxes(input).length > 0);
  const growth = given.maxElements === undefined && free.length > 0 ? await unitGrowth(model, maxResponseBytes) : undefined;
  for (const input of model.signature.inputs) {
    if (given.maxElements !== undefined) {
      elements.set(input.name, { most: given.maxElements, from: 'the slot\'s "limits": {"maxElements"}' });
      continue;
    }
    const byBody = Math.floor(maxBody / (dtypeInfo(input.type)?.bytes ?? 1));
    const byOutputs = growth === undefined ? Infinity : growth * elementCount(unitShape(input));
    elements.set(input.name, {
      most: Math.min(byBody, byOutputs),
      from: byOutputs < byBody ? 'derived from the response limit and the outputs at unit size; set the slot\'s "limits": {"maxElements"}' : 'derived from --max-body; set the slot\'s "limits": {"maxElements"}',
    });
  }
  return { elements, maxDimension: given.maxDimension, maxResponseBytes, responseFrom };
}

/**
 * Refuses, before anything runs, inputs with a zero-sized dimension (400: ONNX Runtime would fail deep inside
 * with its own source paths) and inputs over the version's limits (413, naming the setting).
 */
export function checkInputs(modelName: string, signature: ModelSignature, feeds: Feeds, limits: TensorLimits): void {
  for (const [name, tensor] of Object.entries(feeds)) {
    const spec = signature.inputs.find((input) => input.name === name);
    if (!spec) continue;
    const shape = JSON.stringify(tensor.dims);
    for (const axis of freeAxes(spec)) {
      const size = tensor.dims[axis];
      if (size === 0) throw new EdgeInferError('EI_INPUT_EMPTY', [name, shape]);
      if (limits.maxDimension !== undefined && size !== undefined && size > limits.maxDimension) {
        throw new EdgeInferError('EI_INPUT_TOO_LARGE', [name, modelName, shape, `${limits.maxDimension} in each free dimension`, 'the slot\'s "limits": {"maxDimension"}']);
      }
    }
    const bound = limits.elements.get(name);
    if (bound && elementCount(tensor.dims) > bound.most) {
      throw new EdgeInferError('EI_INPUT_TOO_LARGE', [name, modelName, shape, `${bound.most} elements`, bound.from]);
    }
  }
}

/** Refuses outputs whose response, counted at its widest, would pass the limit: before it is encoded. */
export function checkOutputs(modelName: string, outputs: Outputs, limits: TensorLimits): void {
  let bytes = 0;
  for (const tensor of Object.values(outputs)) bytes += tensor.data.length * (JSON_WIDTH[tensor.type] ?? WIDEST);
  if (bytes > limits.maxResponseBytes) throw new EdgeInferError('EI_OUTPUT_TOO_LARGE', [modelName, bytes, limits.maxResponseBytes, limits.responseFrom]);
}

/** The positions of an input's free dimensions. */
function freeAxes(spec: TensorSpec): number[] {
  return spec.shape.flatMap((d, axis) => (isFreeDimension(d) ? [axis] : []));
}

/** How many times the inputs may grow over unit size before outputs growing with them pass `maxResponseBytes`. */
async function unitGrowth(model: EngineModel, maxResponseBytes: number): Promise<number | undefined> {
  try {
    const outputs = await model.run(zeroFeeds(model.signature));
    let bytes = 0;
    for (const tensor of Object.values(outputs)) bytes += tensor.data.byteLength;
    return Math.max(1, Math.floor(maxResponseBytes / Math.max(1, bytes)));
  } catch {
    return undefined;
  }
}
