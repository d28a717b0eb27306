/**
 * Standalone mode's desired state: a JSON file with the same schema as the twin's desired properties,
 * read at start and again whenever it changes. Polling (not inotify) follows editors that replace the file
 * and volumes mounted into a container alike; a half-written or invalid file is reported and the models
 * keep running as they are.
 */
import { readFile, stat } from 'node:fs/promises';
import { unwatchFile, watchFile } from 'node:fs';
import { messageOf } from '../errors.js';
import { readDesiredState, type DesiredState } from './desired-state.js';

export interface DesiredFileHandlers {
  onState(state: DesiredState): void;
  /** Called with a message when the file cannot be used, and with null once it can again. */
  onProblem(message: string | null): void;
}

export async function readDesiredFile(file: string): Promise<DesiredState | string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    return `${file}: ${messageOf(error)}`;
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    return `${file} is not valid JSON: ${messageOf(error)}`;
  }
  const state = readDesiredState(document);
  return typeof state === 'string' ? `${file}${state}` : state;
}

/** Reads the file now and on every change; returns a function that stops watching. */
export async function watchDesiredFile(file: string, handlers: DesiredFileHandlers, intervalMs = 500): Promise<() => void> {
  const load = async () => {
    const state = await readDesiredFile(file);
    if (typeof state === 'string') return handlers.onProblem(state);
    handlers.onProblem(null);
    handlers.onState(state);
  };
  await load();
  let last = await stat(file).then((s) => s.mtimeMs, () => 0);
  const listener = (current: { mtimeMs: number }) => {
    if (current.mtimeMs === last) return;
    last = current.mtimeMs;
    void load();
  };
  watchFile(file, { interval: intervalMs }, listener);
  return () => unwatchFile(file, listener);
}
