/**
 * One ffmpeg child per camera, its stdout cut into frames. ffmpeg's log (info level, each line tagged with its
 * level) tells the camera's picture size, which maps detections back to the camera's pixels, and its errors,
 * which a fault quotes with the URI's secrets removed. ffmpeg ending for any reason is a fault.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { EdgeInferError } from '../errors.js';
import type { FrameSize } from '../pipeline/frame.js';
import { resizeGeometry, type ImageGeometry } from '../pipeline/image.js';
import { redactText } from '../redact.js';
import type { CameraAddress } from './camera-address.js';
import { ffmpegArgs, type FrameRate } from './ffmpeg-args.js';
import type { FrameHandlers, FrameSource } from './frame-source.js';
import { FixedSizeSplitter, JpegSplitter } from './frame-splitters.js';

/** How long ffmpeg gets to end an RTSP session politely before it is killed. */
const KILL_AFTER_MS = 2000;
/** How many of ffmpeg's error lines a fault quotes. */
const LAST_WORDS = 3;
/** "[tcp @ 0x55…] [error] Connection refused": the level tag of a `-loglevel level+…` line. */
const LEVEL_TAG = /\[(trace|debug|verbose|info|warning|error|fatal|panic)\] /;
/** The input stream's description: "Stream #0:0: Video: h264 (…), yuv420p(…), 960x640 [SAR 1:1 DAR 3:2], …". */
const INPUT_VIDEO = /Stream #0:\d+.*?: Video: .*?, (\d+)x(\d+)/;

/** How to run ffmpeg: which one (a path, or a name on PATH), at what rate, and the frame size when pixels are wanted. */
export interface FfmpegOptions extends FrameRate {
  ffmpeg: string;
}

export function ffmpegFrames(address: CameraAddress, options: FfmpegOptions, handlers: FrameHandlers): FrameSource {
  const { ffmpeg, size } = options;
  const child = spawn(ffmpeg, ffmpegArgs(address, options), { stdio: ['ignore', 'pipe', 'pipe'] });
  let closed = false;
  const lastWords: string[] = [];
  const fault = (error: EdgeInferError) => {
    if (closed) return;
    closed = true;
    child.kill('SIGKILL');
    handlers.fault(error);
  };

  let geometry: ImageGeometry | undefined;
  let outputDescribed = false;
  createInterface({ input: child.stderr }).on('line', (line) => {
    const tag = LEVEL_TAG.exec(line);
    const level = tag?.[1];
    if (level === 'info') {
      // The output's streams are described after the input's, with the output size: only the input's counts.
      if (/^\s*Output #0/.test(line.slice(tag!.index + tag![0].length))) outputDescribed = true;
      const input = outputDescribed || geometry || !size ? null : INPUT_VIDEO.exec(line);
      if (input) geometry = resizeGeometry(Number(input[1]), Number(input[2]), size!);
    } else if (level === 'error' || level === 'fatal' || level === 'panic') {
      lastWords.push(line.replace(LEVEL_TAG, '').trim());
      if (lastWords.length > LAST_WORDS) lastWords.shift();
    }
  });

  const onStdout = size ? pixelFrames(size, () => geometry, handlers) : jpegFrames(handlers);
  child.stdout.on('data', (chunk: Buffer) => {
    if (!closed) onStdout(chunk);
  });
  child.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') fault(new EdgeInferError('EI_FFMPEG_NOT_FOUND', [ffmpeg]));
    else fault(new EdgeInferError('EI_CAMERA_FAILED', [address.shown, `ffmpeg did not start: ${error.message}`]));
  });
  child.on('close', (code, signal) => {
    const said = redactText(lastWords.join(' / '), address.uri);
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    fault(new EdgeInferError('EI_CAMERA_FAILED', [address.shown, `ffmpeg ${how}${said ? `: ${said}` : ''}`]));
  });
  return {
    close() {
      if (closed) return;
      closed = true;
      // SIGTERM lets ffmpeg send RTSP TEARDOWN, which frees the stream on cameras that allow few clients.
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS).unref();
    },
  };
}

function jpegFrames(handlers: FrameHandlers): (chunk: Buffer) => void {
  const splitter = new JpegSplitter();
  return (chunk) => {
    for (const image of splitter.push(chunk)) handlers.frame({ kind: 'image', image, contentType: 'image/jpeg' });
  };
}

function pixelFrames(size: FrameSize, geometry: () => ImageGeometry | undefined, handlers: FrameHandlers): (chunk: Buffer) => void {
  const splitter = new FixedSizeSplitter(size.width * size.height * 3);
  return (chunk) => {
    for (const pixels of splitter.push(chunk)) {
      const known = geometry();
      // ffmpeg describes its input before it writes a frame, but the two pipes may be read in either order:
      // a frame that overtakes the description cannot be mapped back to the camera's pixels and is skipped.
      if (known) handlers.frame({ kind: 'pixels', pixels, size, geometry: known });
    }
  };
}
