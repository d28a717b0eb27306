/**
 * A camera frame as a JPEG with what was found drawn on it: boxes, scores and keypoints, as an SVG that sharp
 * lays over the picture. A frame that came as pixels is drawn as the model saw it (its input size, padding
 * included), the detections mapped from the camera's pixels into it.
 */
import sharp from 'sharp';
import type { Frame } from './frame.js';

interface Detection {
  score?: unknown;
  box?: unknown;
  keypoints?: unknown;
}

export async function drawDetections(frame: Frame, result: unknown): Promise<Buffer> {
  const picture = frame.kind === 'image' ? sharp(frame.image) : sharp(frame.pixels, { raw: { width: frame.size.width, height: frame.size.height, channels: 3 } });
  const { width = 0, height = 0 } = frame.kind === 'image' ? await picture.metadata() : frame.size;
  const g = frame.kind === 'pixels' ? frame.geometry : { scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 0 };
  const x = (v: number) => v * g.scaleX + g.offsetX;
  const y = (v: number) => v * g.scaleY + g.offsetY;
  const detections = (result as { detections?: unknown } | null)?.detections;
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 200));
  const shapes = (Array.isArray(detections) ? (detections as Detection[]) : []).map((d) => {
    const parts: string[] = [];
    if (Array.isArray(d.box) && d.box.length === 4) {
      const [x1, y1, x2, y2] = d.box as [number, number, number, number];
      parts.push(`<rect x="${x(x1)}" y="${y(y1)}" width="${x(x2) - x(x1)}" height="${y(y2) - y(y1)}" fill="none" stroke="#00e676" stroke-width="${stroke}"/>`);
      if (typeof d.score === 'number') {
        parts.push(`<text x="${x(x1)}" y="${Math.max(y(y1) - stroke * 2, stroke * 6)}" font-family="sans-serif" font-size="${stroke * 6}" fill="#00e676">${d.score.toFixed(2)}</text>`);
      }
    }
    if (Array.isArray(d.keypoints)) {
      for (const point of d.keypoints as number[][]) parts.push(`<circle cx="${x(point[0]!)}" cy="${y(point[1]!)}" r="${stroke * 1.5}" fill="#ff1744"/>`);
    }
    return parts.join('');
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${shapes.join('')}</svg>`;
  // Full-resolution colour: with the usual 4:2:0, thin green lines on a small picture smear into the scene.
  return picture.composite([{ input: Buffer.from(svg), top: 0, left: 0 }]).jpeg({ chromaSubsampling: '4:4:4' }).toBuffer();
}
