/**
 * What a camera URI names, and how to show it. `file:///dev/videoN` is a V4L2 device; any other `file://`
 * path is a video file, looped (for demos and tests).
 */
import { fileURLToPath } from 'node:url';
import { redactUri } from '../redact.js';

export type CameraKind = 'rtsp' | 'http' | 'v4l2' | 'file';

export interface CameraAddress {
  kind: CameraKind;
  /** As given, credentials included: only ffmpeg and the HTTP client see it. */
  uri: string;
  /** For logs, errors and the twin: no user info, no query string. */
  shown: string;
  /** The local path, for `file://` URIs. */
  path?: string;
}

export function cameraAddress(uri: string): CameraAddress {
  const scheme = uri.slice(0, uri.indexOf(':')).toLowerCase();
  const shown = redactUri(uri);
  if (scheme === 'rtsp' || scheme === 'rtsps') return { kind: 'rtsp', uri, shown };
  if (scheme === 'http' || scheme === 'https') return { kind: 'http', uri, shown };
  const path = fileURLToPath(uri);
  return { kind: /^\/dev\/video\d+$/.test(path) ? 'v4l2' : 'file', uri, shown, path };
}
