/**
 * A camera's frames, from whichever reader its URI needs: pixels fitted to `size` where ffmpeg reads the
 * camera and a size is asked for, JPEGs otherwise (and always from snapshot URLs). A source reports a fault
 * once and then stays silent; the camera closes it and, after its backoff, opens a new one.
 */
import type { EdgeInferError } from '../errors.js';
import type { Frame } from '../pipeline/frame.js';
import type { NetworkSettings } from '../models/http-agent.js';
import type { CameraAddress } from './camera-address.js';
import { ffmpegFrames, type FfmpegOptions } from './ffmpeg-frames.js';
import { httpFrames } from './http-frames.js';

export interface FrameHandlers {
  frame(frame: Frame): void;
  fault(error: EdgeInferError): void;
}

export interface FrameSource {
  close(): void;
}

export interface FrameSourceOptions extends FfmpegOptions {
  /** The CA bundle and proxy settings for `https://` snapshot cameras. */
  network?: NetworkSettings;
}

export function openFrames(address: CameraAddress, options: FrameSourceOptions, handlers: FrameHandlers): FrameSource {
  return address.kind === 'http' ? httpFrames(address, options, handlers) : ffmpegFrames(address, options, handlers);
}
