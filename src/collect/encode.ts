/**
 * A kept call turned into the bytes of its files, off the request path: the input as it came (an image's
 * bytes, a JSON body, camera pixels encoded once as JPEG, OIP tensors as JSON) or as the tensor the model took,
 * and the output as JSON. Tensors are written as `{"<name>": {"dtype", "shape", "data"}}`, the shape the REST
 * API's raw outputs have.
 */
import sharp from 'sharp';
import type { ModelVersion } from '../engine/loaded-version.js';
import type { Feeds, Tensor } from '../engine/tensor.js';
import { imageToTensor, pixelsToTensor } from '../pipeline/image.js';
import { feedsFromScoreBody, outputsToJson } from '../pipeline/json-tensors.js';
import type { TapInput } from '../models/tap.js';
import { EXTENSIONS } from './layout.js';

export interface EncodedFile {
  extension: string;
  bytes: Buffer;
}

/** Camera frames are kept as JPEG at this quality: close to the frame, a tenth of its raw size. */
const JPEG_QUALITY = 90;

/** The input's file; `kind` says what it holds (an input with no tensor form, e.g. for an entry script, stays as it came). */
export async function encodeInput(model: ModelVersion, input: TapInput, want: 'as-received' | 'tensor'): Promise<EncodedFile & { kind: 'as-received' | 'tensor' }> {
  if (input.kind === 'infer') return { kind: 'as-received', ...tensorsFile(input.feeds) };
  const request = input.request;
  const plan = model.imagePlan;
  if (want === 'tensor') {
    const feeds = await tensorFeeds(model, input);
    if (feeds) return { kind: 'tensor', ...tensorsFile(feeds) };
  }
  switch (request.kind) {
    case 'json':
      return { kind: 'as-received', extension: 'json', bytes: Buffer.from(JSON.stringify(request.body)) };
    case 'image':
      return { kind: 'as-received', extension: EXTENSIONS[request.contentType] ?? 'bin', bytes: request.image };
    case 'pixels': {
      // Pixels reach a version only through its image plan (entry scripts refuse them), at the plan's size.
      const { width, height } = plan!;
      const bytes = await sharp(request.pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: JPEG_QUALITY }).toBuffer();
      return { kind: 'as-received', extension: 'jpg', bytes };
    }
  }
}

/** The tensors the version's own preprocessing makes of a request; undefined where it has none (an entry script). */
async function tensorFeeds(model: ModelVersion, input: Extract<TapInput, { kind: 'score' }>): Promise<Feeds | undefined> {
  const { request } = input;
  const plan = model.imagePlan;
  if (request.kind === 'json') return model.signature.inputs.length > 0 ? feedsFromScoreBody(model.name, model.signature, request.body) : undefined;
  if (!plan) return undefined;
  const tensor = request.kind === 'image' ? (await imageToTensor(request.image, plan)).tensor : pixelsToTensor(request.pixels, plan);
  return { [plan.input]: tensor };
}

/** The output's file: infer()'s tensors, or score()'s JSON result. */
export function encodeOutput(output: unknown): EncodedFile {
  return { extension: 'json', bytes: Buffer.from(JSON.stringify(jsonOf(output))) };
}

/** An output as JSON can hold it: tensors as `{dtype, shape, data}`, anything else as it is. */
export function jsonOf(output: unknown): unknown {
  return isTensors(output) ? outputsToJson(output) : output;
}

function tensorsFile(feeds: Feeds): EncodedFile {
  return { extension: 'json', bytes: Buffer.from(JSON.stringify(outputsToJson(feeds))) };
}

function isTensors(value: unknown): value is Record<string, Tensor> {
  if (value === null || typeof value !== 'object') return false;
  const entries = Object.values(value as Record<string, unknown>);
  return entries.length > 0 && entries.every((entry) => entry !== null && typeof entry === 'object' && ArrayBuffer.isView((entry as Tensor).data) && Array.isArray((entry as Tensor).dims));
}
