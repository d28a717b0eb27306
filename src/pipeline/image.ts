/**
 * Image → input tensor, with sharp: decode, orient, resize (fill | contain | cover), lay out (NHWC | NCHW),
 * order channels (RGB | BGR) and normalise ((pixel − mean) / std).
 */
import sharp from 'sharp';
import { EdgeInferError, messageOf } from '../errors.js';
import type { Tensor, TensorSpec } from '../engine/tensor.js';
import { channelNumbers, type ImageSettingsInput } from '../models/manifest.js';

/** The image formats a request may send as its raw body; sharp decodes each. */
export const IMAGE_CONTENT_TYPES: readonly string[] = ['image/jpeg', 'image/png', 'image/webp'];

/** The image type a Content-Type value names (parameters and case aside), or undefined for any other. */
export function imageContentType(header: string | undefined): string | undefined {
  const type = (header ?? '').split(';')[0]!.trim().toLowerCase();
  return IMAGE_CONTENT_TYPES.includes(type) ? type : undefined;
}

export interface ImagePlan {
  input: string;
  width: number;
  height: number;
  layout: 'NHWC' | 'NCHW';
  channels: 'RGB' | 'BGR';
  resize: 'fill' | 'contain' | 'cover';
  /** uint8 models take the pixels as they are; float models get (pixel − mean) / std. */
  type: 'float32' | 'uint8';
  mean: number[];
  std: number[];
}

/**
 * Maps the model's input pixels back to the image as sent: sent = (model − offset) / scale.
 * Postprocessors use it to answer in the caller's coordinates.
 */
export interface ImageGeometry {
  width: number;
  height: number;
  scaleX: number;
  scaleY: number;
  offsetX: number;
  offsetY: number;
}

/** The geometry of a tensor sent as is: model pixels are the caller's pixels. */
export function identityGeometry(width: number, height: number): ImageGeometry {
  return { width, height, scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 0 };
}

const RESIZE_FIT = { fill: 'fill', contain: 'contain', cover: 'cover' } as const;

/**
 * Works out, once per loaded version, how images become this input. Throws EI_INPUT_NOT_IMAGE with
 * what to set when the model's input cannot take an image.
 */
export function planImageInput(modelName: string, spec: TensorSpec, settings: ImageSettingsInput = {}): ImagePlan {
  const fail = (why: string): never => {
    throw new EdgeInferError('EI_INPUT_NOT_IMAGE', [modelName, why]);
  };
  if (spec.shape.length !== 4) fail(`its input "${spec.name}" has ${spec.shape.length} dimensions, not 4`);
  if (spec.type !== 'float32' && spec.type !== 'uint8') fail(`its input "${spec.name}" is ${spec.type}, not float32 or uint8`);
  const layout = settings.layout ?? guessLayout(spec.shape);
  if (!layout) fail(`the channel axis of input "${spec.name}" is unclear; set image.layout to NHWC or NCHW`);
  const [hAxis, wAxis] = layout === 'NHWC' ? [1, 2] : [2, 3];
  const fixed = (axis: number) => (typeof spec.shape[axis] === 'number' && (spec.shape[axis] as number) > 0 ? (spec.shape[axis] as number) : undefined);
  const width = settings.width ?? fixed(wAxis);
  const height = settings.height ?? fixed(hAxis);
  if (!width || !height) fail(`input "${spec.name}" has no fixed size; set image.width and image.height`);
  const uint8 = spec.type === 'uint8';
  let mean: number[] = [];
  let std: number[] = [];
  try {
    mean = channelNumbers(settings.mean, 0);
    std = channelNumbers(settings.std, uint8 ? 1 : 255);
  } catch (error) {
    fail(`image.mean/std: ${messageOf(error)}`);
  }
  if (std.some((s) => s === 0)) fail('image.std must not be 0');
  return {
    input: spec.name,
    width: width!,
    height: height!,
    layout: layout!,
    channels: settings.channels ?? 'RGB',
    resize: settings.resize ?? 'fill',
    type: uint8 ? 'uint8' : 'float32',
    mean,
    std,
  };
}

function guessLayout(shape: Array<number | string>): 'NHWC' | 'NCHW' | undefined {
  if (shape[3] === 3) return 'NHWC';
  if (shape[1] === 3) return 'NCHW';
  return undefined;
}

/**
 * An image decoded to RGB pixels at an image plan's size and fit: what preprocessing needs from the picture. It
 * is made apart from the tensor so that a request can decode while it waits for its turn at the model
 * (models/score.ts); `fits` tells the version that takes its turn whether the pixels suit its own plan.
 */
export interface DecodedImage {
  pixels: Buffer;
  geometry: ImageGeometry;
  width: number;
  height: number;
  resize: ImagePlan['resize'];
}

/** Whether `decoded` was made at `plan`'s size and fit (channel order, layout and scale are applied later). */
export function fits(decoded: DecodedImage, plan: ImagePlan): boolean {
  return decoded.width === plan.width && decoded.height === plan.height && decoded.resize === plan.resize;
}

/** Decodes, orients and resizes one image to `plan`'s size. Throws EI_BAD_IMAGE when it does not decode. */
export async function decodeImage(image: Buffer, plan: ImagePlan): Promise<DecodedImage> {
  try {
    const decoder = sharp(image, { failOn: 'error' }).rotate();
    const meta = await decoder.metadata();
    // EXIF orientations 5–8 turn the picture a quarter: the caller's width is the file's height.
    const quarterTurn = (meta.orientation ?? 1) >= 5;
    const width = (quarterTurn ? meta.height : meta.width) ?? 0;
    const height = (quarterTurn ? meta.width : meta.height) ?? 0;
    const geometry = resizeGeometry(width, height, plan);
    const pixels = await decoder
      .removeAlpha()
      .toColourspace('srgb')
      .resize(plan.width, plan.height, { fit: RESIZE_FIT[plan.resize], background: { r: 0, g: 0, b: 0 } })
      .raw()
      .toBuffer();
    return { pixels, geometry, width: plan.width, height: plan.height, resize: plan.resize };
  } catch (error) {
    throw new EdgeInferError('EI_BAD_IMAGE', [messageOf(error)], error);
  }
}

/** Decodes and preprocesses one image. Throws EI_BAD_IMAGE when it does not decode. */
export async function imageToTensor(image: Buffer, plan: ImagePlan): Promise<{ tensor: Tensor; geometry: ImageGeometry }> {
  const { pixels, geometry } = await decodeImage(image, plan);
  return { tensor: pixelsToTensor(pixels, plan), geometry };
}

/**
 * Where the resized picture lies inside the model's input. sharp resizes this way, and ffmpeg's camera filters
 * (sources/ffmpeg-args.ts) are written to the same arithmetic.
 */
export function resizeGeometry(width: number, height: number, plan: Pick<ImagePlan, 'width' | 'height' | 'resize'>): ImageGeometry {
  if (plan.resize === 'fill') {
    return { width, height, scaleX: plan.width / width, scaleY: plan.height / height, offsetX: 0, offsetY: 0 };
  }
  const pick = plan.resize === 'contain' ? Math.min : Math.max;
  const scale = pick(plan.width / width, plan.height / height);
  const resizedWidth = Math.round(width * scale);
  const resizedHeight = Math.round(height * scale);
  // sharp centres the picture: padding (contain) or the crop (cover) splits evenly, the odd pixel last.
  return {
    width,
    height,
    scaleX: resizedWidth / width,
    scaleY: resizedHeight / height,
    offsetX: Math.trunc((plan.width - resizedWidth) / 2),
    offsetY: Math.trunc((plan.height - resizedHeight) / 2),
  };
}

/** An array for `plan`'s input tensor, every element of which pixelsToTensor writes. */
export function inputArray(plan: ImagePlan): Uint8Array | Float32Array {
  const length = plan.width * plan.height * 3;
  return plan.type === 'uint8' ? new Uint8Array(length) : new Float32Array(length);
}

/**
 * Interleaved RGB bytes → the model's layout, channel order and scale, in one pass over the pixels, into `data`
 * (inputArray's: a fresh one, or one the caller reuses).
 */
export function pixelsToTensor(pixels: Uint8Array, plan: ImagePlan, data = inputArray(plan)): Tensor {
  const { width, height } = plan;
  const area = width * height;
  // Where each output channel reads from in a pixel, and where it writes: NHWC interleaves, NCHW uses planes.
  const [r, g, b] = plan.channels === 'RGB' ? [0, 1, 2] : [2, 1, 0];
  const nchw = plan.layout === 'NCHW';
  const step = nchw ? 1 : 3;
  const [o0, o1, o2] = nchw ? [0, area, 2 * area] : [0, 1, 2];
  const uint8 = plan.type === 'uint8';
  // (p − mean) / std as p · k − c: one multiply and one subtract per value.
  const [k0, k1, k2] = uint8 ? [1, 1, 1] : plan.std.map((s) => 1 / s);
  const [c0, c1, c2] = uint8 ? [0, 0, 0] : plan.mean.map((m, i) => m / plan.std[i]!);
  for (let i = 0, p = 0, o = 0; i < area; i++, p += 3, o += step) {
    data[o + o0] = pixels[p + r]! * k0! - c0!;
    data[o + o1] = pixels[p + g]! * k1! - c1!;
    data[o + o2] = pixels[p + b]! * k2! - c2!;
  }
  const dims = nchw ? [1, 3, height, width] : [1, height, width, 3];
  return { type: plan.type, dims, data };
}
