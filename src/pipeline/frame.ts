/**
 * A camera frame as a source hands it over: an encoded image (JPEG from ffmpeg, whatever a snapshot URL
 * answers), or RGB pixels that ffmpeg already resized to a
 * model's input (so the module neither decodes nor resizes it), with the geometry back to the camera's pixels.
 */
import type { ImageGeometry, ImagePlan } from './image.js';

/** The picture a model's image input takes: its size and how a picture is fitted into it. */
export interface FrameSize {
  width: number;
  height: number;
  resize: ImagePlan['resize'];
}

export type Frame = { kind: 'image'; image: Buffer; contentType: string } | { kind: 'pixels'; pixels: Buffer; size: FrameSize; geometry: ImageGeometry };

/** The frame size a plan asks for. */
export function frameSizeOf(plan: ImagePlan): FrameSize {
  return { width: plan.width, height: plan.height, resize: plan.resize };
}

export function sameFrameSize(a: FrameSize | undefined, b: FrameSize | undefined): boolean {
  return a !== undefined && b !== undefined && a.width === b.width && a.height === b.height && a.resize === b.resize;
}
