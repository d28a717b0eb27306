/**
 * MediaPipe BlazeFace: SSD anchors → boxes and six keypoints, then weighted non-maximum suppression
 * (overlapping candidates are blended by score, as MediaPipe does, rather than dropped).
 *
 * Works for the 128 (front) and 256 (back) models alike: both predict 896 anchors on a 16×16 grid with
 * 2 anchors a cell and an 8×8 grid with 6, with offsets in pixels of the model's input.
 * Keypoints, in MediaPipe's order: right eye, left eye, nose tip, mouth centre, right ear, left ear.
 */
import { EdgeInferError } from '../../errors.js';
import type { Outputs, TensorSpec } from '../../engine/tensor.js';
import type { BlazefaceSettings } from '../../models/manifest.js';
import type { ImageGeometry } from '../image.js';
import type { Postprocessor, PostprocessorContext } from './types.js';

const GRID = [
  { cells: 16, anchorsPerCell: 2 },
  { cells: 8, anchorsPerCell: 6 },
];
const VALUES_PER_ANCHOR = 16; // box (dx, dy, w, h) + 6 keypoints (x, y)
const KEYPOINTS = 6;

export interface FaceDetection {
  score: number;
  box: [number, number, number, number];
  keypoints: Array<[number, number]>;
}

interface Candidate {
  score: number;
  /** cx, cy, w, h, then keypoint x, y pairs, all normalised to the model input (0..1). */
  geometry: Float64Array;
}

export function createBlazefacePostprocessor(settings: BlazefaceSettings, context: PostprocessorContext): Postprocessor {
  const { scores, boxes } = pickOutputs(context);
  if (!context.inputSize) {
    throw new EdgeInferError('EI_PACKAGE_INVALID', [context.modelName, 'the blazeface postprocessor needs an image input']);
  }
  const inputWidth = context.inputSize.width;
  const inputHeight = context.inputSize.height;
  const anchors = makeAnchors();
  const minScore = settings.minScore ?? 0.5;
  // Compare logits, not probabilities: one exp() per kept candidate instead of 896 per frame.
  const minLogit = Math.log(minScore / (1 - minScore));
  const iouThreshold = settings.iou ?? 0.3;
  const maxDetections = settings.maxDetections ?? 100;

  return {
    kind: 'blazeface',
    run(outputs: Outputs, geometry: ImageGeometry) {
      const candidates: Candidate[] = [];
      let anchor = 0;
      for (let layer = 0; layer < scores.length; layer++) {
        const scoreData = outputs[scores[layer]!]!.data as Float32Array;
        const boxData = outputs[boxes[layer]!]!.data as Float32Array;
        for (let i = 0; i < scoreData.length; i++, anchor++) {
          const logit = scoreData[i]!;
          if (logit < minLogit) continue;
          candidates.push(decode(boxData, i, anchors, anchor, inputWidth, inputHeight, 1 / (1 + Math.exp(-logit))));
        }
      }
      const faces = weightedSuppression(candidates, iouThreshold).slice(0, maxDetections);
      return { detections: faces.map((face) => toPixels(face, geometry, inputWidth, inputHeight)) };
    },
  };
}

/** Score outputs end in 1, box outputs in 16; the larger layer (512 anchors) comes first in anchor order. */
function pickOutputs(context: PostprocessorContext): { scores: string[]; boxes: string[] } {
  const byAnchors = (a: TensorSpec, b: TensorSpec) => Number(b.shape[1]) - Number(a.shape[1]);
  const outputs = context.signature.outputs;
  const scores = outputs.filter((o) => o.shape.length === 3 && o.shape[2] === 1).sort(byAnchors);
  const boxes = outputs.filter((o) => o.shape.length === 3 && o.shape[2] === VALUES_PER_ANCHOR).sort(byAnchors);
  const anchorCount = (list: TensorSpec[]) => list.reduce((sum, o) => sum + Number(o.shape[1]), 0);
  const expected = GRID.reduce((sum, g) => sum + g.cells * g.cells * g.anchorsPerCell, 0);
  if (scores.length === 0 || scores.length !== boxes.length || anchorCount(scores) !== expected || anchorCount(boxes) !== expected) {
    const seen = outputs.map((o) => `${o.name} ${JSON.stringify(o.shape)}`).join(', ');
    throw new EdgeInferError('EI_PACKAGE_INVALID', [
      context.modelName,
      `the blazeface postprocessor needs score outputs [1, n, 1] and box outputs [1, n, 16] covering ${expected} anchors; the model has ${seen}`,
    ]);
  }
  return { scores: scores.map((o) => o.name), boxes: boxes.map((o) => o.name) };
}

/** Anchor centres (x, y), normalised, in the order the model emits them. */
function makeAnchors(): Float64Array {
  const total = GRID.reduce((sum, g) => sum + g.cells * g.cells * g.anchorsPerCell, 0);
  const anchors = new Float64Array(total * 2);
  let i = 0;
  for (const { cells, anchorsPerCell } of GRID) {
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
        for (let a = 0; a < anchorsPerCell; a++) {
          anchors[i++] = (x + 0.5) / cells;
          anchors[i++] = (y + 0.5) / cells;
        }
      }
    }
  }
  return anchors;
}

function decode(
  boxData: Float32Array,
  index: number,
  anchors: Float64Array,
  anchor: number,
  inputWidth: number,
  inputHeight: number,
  score: number,
): Candidate {
  const base = index * VALUES_PER_ANCHOR;
  const ax = anchors[anchor * 2]!;
  const ay = anchors[anchor * 2 + 1]!;
  const geometry = new Float64Array(4 + KEYPOINTS * 2);
  geometry[0] = ax + boxData[base]! / inputWidth;
  geometry[1] = ay + boxData[base + 1]! / inputHeight;
  geometry[2] = boxData[base + 2]! / inputWidth;
  geometry[3] = boxData[base + 3]! / inputHeight;
  for (let k = 0; k < KEYPOINTS; k++) {
    geometry[4 + k * 2] = ax + boxData[base + 4 + k * 2]! / inputWidth;
    geometry[5 + k * 2] = ay + boxData[base + 5 + k * 2]! / inputHeight;
  }
  return { score, geometry };
}

function iou(a: Float64Array, b: Float64Array): number {
  const left = Math.max(a[0]! - a[2]! / 2, b[0]! - b[2]! / 2);
  const right = Math.min(a[0]! + a[2]! / 2, b[0]! + b[2]! / 2);
  const top = Math.max(a[1]! - a[3]! / 2, b[1]! - b[3]! / 2);
  const bottom = Math.min(a[1]! + a[3]! / 2, b[1]! + b[3]! / 2);
  const inner = Math.max(0, right - left) * Math.max(0, bottom - top);
  const union = a[2]! * a[3]! + b[2]! * b[3]! - inner;
  return union > 0 ? inner / union : 0;
}

/** Highest score first; each face absorbs the candidates that overlap it, blended by score. */
function weightedSuppression(candidates: Candidate[], threshold: number): Candidate[] {
  candidates.sort((a, b) => b.score - a.score);
  const taken = new Uint8Array(candidates.length);
  const faces: Candidate[] = [];
  for (let i = 0; i < candidates.length; i++) {
    if (taken[i]) continue;
    const best = candidates[i]!;
    const blended = new Float64Array(best.geometry.length);
    let weight = 0;
    for (let j = i; j < candidates.length; j++) {
      if (taken[j] || (j !== i && iou(best.geometry, candidates[j]!.geometry) < threshold)) continue;
      taken[j] = 1;
      const { score, geometry } = candidates[j]!;
      for (let k = 0; k < geometry.length; k++) blended[k]! += geometry[k]! * score;
      weight += score;
    }
    for (let k = 0; k < blended.length; k++) blended[k]! /= weight;
    faces.push({ score: best.score, geometry: blended });
  }
  return faces;
}

function toPixels(face: Candidate, g: ImageGeometry, inputWidth: number, inputHeight: number): FaceDetection {
  const x = (normalised: number) => clamp((normalised * inputWidth - g.offsetX) / g.scaleX, g.width);
  const y = (normalised: number) => clamp((normalised * inputHeight - g.offsetY) / g.scaleY, g.height);
  const [cx, cy, w, h] = face.geometry;
  const keypoints: Array<[number, number]> = [];
  for (let k = 0; k < KEYPOINTS; k++) keypoints.push([x(face.geometry[4 + k * 2]!), y(face.geometry[5 + k * 2]!)]);
  return {
    score: Math.round(face.score * 1e4) / 1e4,
    box: [x(cx! - w! / 2), y(cy! - h! / 2), x(cx! + w! / 2), y(cy! + h! / 2)],
    keypoints,
  };
}

/** Inside the image, to a tenth of a pixel. */
function clamp(value: number, limit: number): number {
  return Math.round(Math.min(Math.max(value, 0), limit) * 10) / 10;
}
