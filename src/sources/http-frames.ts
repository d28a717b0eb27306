/**
 * `http(s)://` cameras. The first answer says which kind: a `multipart/x-mixed-replace` stream (MJPEG) is read
 * by ffmpeg like any stream; a single image is a snapshot URL, fetched again at the frame rate. Credentials in
 * the URI become a Basic authorization header (fetch refuses URIs that carry them).
 */
import fetch, { type Response } from 'node-fetch';
import { EdgeInferError, messageOf } from '../errors.js';
import { agentFor } from '../models/http-agent.js';
import { redactText } from '../redact.js';
import type { CameraAddress } from './camera-address.js';
import { ffmpegFrames } from './ffmpeg-frames.js';
import type { FrameHandlers, FrameSource, FrameSourceOptions } from './frame-source.js';

export function httpFrames(address: CameraAddress, options: FrameSourceOptions, handlers: FrameHandlers): FrameSource {
  const url = new URL(address.uri);
  const headers: Record<string, string> = {};
  if (url.username || url.password) {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  const agent = agentFor(address.uri, options.network);
  const periodMs = 1000 / options.fps;
  let closed = false;
  let stream: FrameSource | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** Aborts the request under way: on close, or once a stream's answer has said what it is. */
  let request: AbortController | undefined;
  const fault = (error: EdgeInferError) => {
    if (closed) return;
    closed = true;
    handlers.fault(error);
  };

  const poll = async (): Promise<void> => {
    const started = performance.now();
    request = new AbortController();
    let response: Response;
    try {
      const signal = AbortSignal.any([request.signal, AbortSignal.timeout(options.timeoutMs)]);
      response = await fetch(url.toString(), { headers, ...(agent ? { agent } : {}), signal });
    } catch (error) {
      return fault(new EdgeInferError('EI_CAMERA_FAILED', [address.shown, redactText(messageOf(error), address.uri)]));
    }
    if (closed) return void response.body?.resume();
    if (!response.ok) {
      response.body?.resume();
      return fault(new EdgeInferError('EI_CAMERA_FAILED', [address.shown, `the camera answered HTTP ${response.status}`]));
    }
    const type = response.headers.get('content-type') ?? '';
    if (type.toLowerCase().startsWith('multipart/')) {
      // A stream: this connection was only the question; ffmpeg opens its own.
      request.abort();
      stream = ffmpegFrames(address, options, { frame: handlers.frame, fault });
      return;
    }
    if (!type.toLowerCase().startsWith('image/')) {
      response.body?.resume();
      return fault(new EdgeInferError('EI_CAMERA_FAILED', [address.shown, `the camera answered "${type}", neither an image nor an MJPEG stream`]));
    }
    // A snapshot is scored as the camera encoded it (JPEG, mostly; sharp reads any image type).
    let image: Buffer;
    try {
      image = Buffer.from(await response.arrayBuffer());
    } catch (error) {
      return fault(new EdgeInferError('EI_CAMERA_FAILED', [address.shown, redactText(messageOf(error), address.uri)]));
    }
    if (closed) return;
    handlers.frame({ kind: 'image', image, contentType: type });
    timer = setTimeout(() => void poll(), Math.max(0, periodMs - (performance.now() - started)));
  };
  void poll();

  return {
    close() {
      closed = true;
      clearTimeout(timer);
      request?.abort();
      stream?.close();
    },
  };
}
