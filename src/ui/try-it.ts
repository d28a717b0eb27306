/**
 * "Try it": an image dropped (or chosen) goes to `POST /score`, and the picture is drawn on a canvas with the
 * boxes of what the default model found, and a one-line summary such as "3 detections in 40 ms".
 */
import { problemOf, request } from './api.js';
import { byId } from './dom.js';

interface Detection {
  box?: [number, number, number, number];
  label?: string;
  score?: number;
}

const BOX_COLOUR = '#00e676';

const drop = byId('drop');
const input = byId<HTMLInputElement>('try-file');
const summary = byId('try-summary');
const canvas = byId<HTMLCanvasElement>('try-canvas');

export function startTryIt(): void {
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    if (file) void score(file);
  });
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const file = event.dataTransfer?.files[0];
    if (file) void score(file);
  });
}

async function score(file: File): Promise<void> {
  summary.textContent = `Scoring ${file.name}…`;
  const picture = await createImageBitmap(file).catch(() => undefined);
  if (!picture) {
    summary.textContent = `${file.name} is not an image this browser can read.`;
    return;
  }
  const started = performance.now();
  const response = await request('/score', { method: 'POST', headers: { 'content-type': file.type || 'image/jpeg' }, body: file });
  if (!response.ok) {
    summary.textContent = `Not scored: ${await problemOf(response)}`;
    return;
  }
  const result = (await response.json()) as { detections?: Detection[] };
  const detections = Array.isArray(result.detections) ? result.detections : [];
  draw(picture, detections);
  summary.textContent = `${describe(detections)} in ${Math.round(performance.now() - started)} ms (${file.name})`;
  canvas.dataset.detections = String(detections.length);
}

function draw(picture: ImageBitmap, detections: Detection[]): void {
  canvas.width = picture.width;
  canvas.height = picture.height;
  const context = canvas.getContext('2d')!;
  context.drawImage(picture, 0, 0);
  context.strokeStyle = BOX_COLOUR;
  context.lineWidth = Math.max(2, Math.round(Math.min(picture.width, picture.height) / 200));
  for (const { box } of detections) {
    if (Array.isArray(box) && box.length === 4) context.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]);
  }
}

/** "3 detections", "1 person, 2 cars" (by label, where the model gives one), or "Nothing found". */
function describe(detections: Detection[]): string {
  if (detections.length === 0) return 'Nothing found';
  const counts = new Map<string, number>();
  for (const d of detections) counts.set(d.label ?? 'detection', (counts.get(d.label ?? 'detection') ?? 0) + 1);
  return [...counts].map(([label, n]) => `${n} ${label}${n === 1 ? '' : 's'}`).join(', ');
}
