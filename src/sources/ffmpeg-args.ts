/**
 * The ffmpeg command line for one camera: read the source, keep `fps` frames a second, and write them to stdout
 * back to back, either as RGB pixels already fitted to the model's input (ffmpeg scales the decoded frame, so the
 * module neither decodes nor resizes: a third of the CPU per frame, README "Cameras") or, when the model takes
 * encoded images (an entry script) or is not loaded yet, as JPEGs at the camera's size.
 */
import type { FrameSize } from '../pipeline/frame.js';
import type { CameraAddress } from './camera-address.js';

export interface FrameRate {
  fps: number;
  /** The camera's stall timeout: no frame for this long is a fault. */
  timeoutMs: number;
  /** The model's input, for frames as pixels; JPEG frames when unset. */
  size?: FrameSize | undefined;
}

export function ffmpegArgs(address: CameraAddress, { fps, timeoutMs, size }: FrameRate): string[] {
  // ffmpeg's own socket limit is only a backstop, twice the stall timeout: the camera's stall timer is what
  // reports a silent source, with a message that says so.
  const microseconds = String(Math.round(timeoutMs * 2000));
  // Live sources: no input buffering, so that the frame scored is the newest one the camera sent; and a short
  // probe (half a second, not five), which brings the first frame of an RTSP camera 2 s sooner.
  const live = ['-fflags', 'nobuffer', '-flags', 'low_delay', '-analyzeduration', '500000', '-probesize', '500000'];
  const input: Record<CameraAddress['kind'], string[]> = {
    // TCP: no lost packets (smeared frames) through NAT and Wi-Fi, where UDP is the usual trouble.
    rtsp: [...live, '-rtsp_transport', 'tcp', '-timeout', microseconds, '-i', address.uri],
    http: [...live, '-rw_timeout', microseconds, '-i', address.uri],
    v4l2: [...live, '-f', 'v4l2', '-i', address.path!],
    // A file plays at its own speed (-re), over and over, as a camera would.
    file: ['-re', '-stream_loop', '-1', '-i', address.path!],
  };
  const output = size
    ? ['-vf', `fps=${fps},${fitFilter(size)}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24']
    : ['-vf', `fps=${fps}`, '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '3'];
  // Info level, tagged, because the input's size is read from it (ffmpeg-frames.ts); -nostats drops the progress lines.
  return ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'level+info', ...input[address.kind], '-an', ...output, 'pipe:1'];
}

/**
 * Fits the frame into the model's input as sharp does for `/score` images (pipeline/image.ts resizeGeometry):
 * the scaled size rounded, and the padding (contain) or the crop (cover) split evenly, the odd pixel last.
 */
function fitFilter({ width, height, resize }: FrameSize): string {
  const rgb = 'format=rgb24';
  if (resize === 'fill') return `scale=${width}:${height},${rgb}`;
  const pick = resize === 'contain' ? 'min' : 'max';
  const factor = `${pick}(${width}/iw\\,${height}/ih)`;
  const scale = `scale=w='round(iw*${factor})':h='round(ih*${factor})'`;
  if (resize === 'contain') return `${scale},${rgb},pad=${width}:${height}:'trunc((ow-iw)/2)':'trunc((oh-ih)/2)'`;
  return `${scale},${rgb},crop=${width}:${height}:'trunc((iw-${width})/2)':'trunc((ih-${height})/2)'`;
}
