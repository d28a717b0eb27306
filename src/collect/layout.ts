/**
 * Where a record's files go in the collection folder, partitioned as Azure ML's data collector does:
 * `<model>/<version>/<yyyy>/<MM>/<dd>/<HH>/` (UTC). Paths are relative to the folder, with `/`, and are the
 * blob names once uploaded, so the container mirrors the folder.
 */
import type { ScoreSource } from '../models/registry.js';

/** One line of an index file: one kept call. File paths are relative to the collection folder (= blob names). */
export interface IndexLine {
  id: string;
  /** When the call ended, ISO-8601 UTC. */
  time: string;
  source: ScoreSource;
  model: string;
  version: string;
  /** Why it was kept: the mode that chose it. */
  reason: 'all' | 'sample' | 'lowConfidence' | 'disagreement';
  /** `as-received` (the image or JSON body as it came, camera pixels as JPEG) or `tensor`. */
  inputKind: 'as-received' | 'tensor';
  input: string;
  output: string;
  /** The version's time for the call, ms. */
  latencyMs: number;
  /** The best score in the result; null when it carries none. */
  confidence: number | null;
  /** For a disagreement: the candidate's version and its output on the same input. */
  candidate?: { version: string; output: unknown };
}

/** Version names are free text in the desired state; in a path they keep letters, digits, `.`, `_`, `-` and `@`. */
function pathPart(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._@-]/g, '_');
  return safe === '.' || safe === '..' || safe === '' ? `_${safe}` : safe;
}

export function partitionOf(model: string, version: string, at: Date): string {
  const iso = at.toISOString();
  return [pathPart(model), pathPart(version), iso.slice(0, 4), iso.slice(5, 7), iso.slice(8, 10), iso.slice(11, 13)].join('/');
}

/** A record id that sorts by time: `yyyyMMddTHHmmssSSSZ-<sequence>`. */
export function recordId(at: Date, sequence: number): string {
  return `${at.toISOString().replace(/[-:.]/g, '')}-${sequence.toString().padStart(6, '0')}`;
}

/** An index file while lines are appended to it; renamed to `.jsonl` when closed, and only then uploaded. */
export const OPEN_INDEX_SUFFIX = '.jsonl.open';
/** A data file being written; renamed into place when whole. */
export const WRITING_SUFFIX = '.writing';

export function indexName(partition: string, opened: Date, sequence: number): string {
  return `${partition}/index-${recordId(opened, sequence)}${OPEN_INDEX_SUFFIX}`;
}

/** The content type a file is uploaded with, from its extension. */
export function contentTypeOf(file: string): string {
  const extension = file.slice(file.lastIndexOf('.') + 1);
  return CONTENT_TYPES[extension] ?? 'application/octet-stream';
}

const CONTENT_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  json: 'application/json',
  jsonl: 'application/x-ndjson',
};

export const EXTENSIONS: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp' };
