/**
 * A camera frame's pixels, fitted to one model's input, made to fit another's: a candidate version shadowed on
 * the frames of an active version whose input size differs (BlazeFace 128 beside 256). The pixels are resized
 * as they are, and the geometry follows, so that the candidate still answers in the camera's coordinates.
 */
import sharp from 'sharp';
import type { ImageGeometry } from './image.js';

export interface PixelFrame {
  pixels: Uint8Array;
  geometry: ImageGeometry;
}

/** `frame`, `from` pixels wide and high, as `to` pixels wide and high (RGB, 3 bytes a pixel). */
export async function refitPixels(frame: PixelFrame, from: { width: number; height: number }, to: { width: number; height: number }): Promise<PixelFrame> {
  const pixels = await sharp(frame.pixels, { raw: { width: from.width, height: from.height, channels: 3 } })
    .resize(to.width, to.height, { fit: 'fill' })
    .raw()
    .toBuffer();
  // A model pixel x' is x' · (from / to) of the first model's input; sent = (model − offset) / scale, so both divide.
  const sx = from.width / to.width;
  const sy = from.height / to.height;
  const { geometry: g } = frame;
  return { pixels, geometry: { ...g, scaleX: g.scaleX / sx, scaleY: g.scaleY / sy, offsetX: g.offsetX / sx, offsetY: g.offsetY / sy } };
}
