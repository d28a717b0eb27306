/**
 * A model version on disk (contract section 3): a bare `.onnx` file, or a folder holding `.onnx` files,
 * an optional `edge-infer.json` manifest and an optional `score.mjs` entry script.
 * Archives are unpacked into a folder first (see unpack.ts); this file reads folders and files only.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { EdgeInferError, messageOf } from '../errors.js';
import { findSettingsProblem, type ModelSettings } from './manifest.js';
import { resolveInside } from './package-paths.js';

export const MANIFEST_FILE = 'edge-infer.json';
export const ENTRY_SCRIPT_FILE = 'score.mjs';

export interface ModelPackage {
  /** The folder the package's relative names resolve in. */
  dir: string;
  /** The ONNX model to load, when there is one (a package with an entry script may load its own). */
  modelFile?: string;
  scriptFile?: string;
  /** The manifest's settings; an empty object when the package has none. */
  settings: ModelSettings;
}

/**
 * Reads a package from a `.onnx` file or a folder.
 * @param inline settings given beside the package (a model slot), which override the manifest.
 */
export async function readModelPackage(location: string, inline: ModelSettings = {}): Promise<ModelPackage> {
  const info = await stat(location).catch((error: unknown) => {
    throw new EdgeInferError('EI_PACKAGE_INVALID', [location, messageOf(error)], error);
  });
  // A device or a pipe (file:///dev/zero) would be read without end, or fail deep inside with no clear code.
  if (!info.isFile() && !info.isDirectory()) throw new EdgeInferError('EI_PACKAGE_INVALID', [location, 'it is neither a file nor a folder']);
  if (info.isFile()) {
    if (!location.toLowerCase().endsWith('.onnx')) {
      throw new EdgeInferError('EI_PACKAGE_INVALID', [location, 'a model file must end in .onnx (or be a .tar.gz, .tgz or .zip package)']);
    }
    const settings = checked(location, inline);
    return { dir: path.dirname(location), modelFile: location, settings };
  }
  const dir = await packageRoot(location);
  const settings = checked(location, { ...(await readManifest(dir)), ...inline });
  const files = await readdir(dir);
  const scriptFile = files.includes(ENTRY_SCRIPT_FILE) ? path.join(dir, ENTRY_SCRIPT_FILE) : undefined;
  return { dir, modelFile: await pickModelFile(dir, files, settings, scriptFile !== undefined), scriptFile, settings };
}

/** Archives often wrap everything in one top folder; the package is then that folder. */
async function packageRoot(dir: string): Promise<string> {
  const entries = await readdir(dir, { withFileTypes: true });
  const visible = entries.filter((e) => !e.name.startsWith('.'));
  if (visible.length === 1 && visible[0]!.isDirectory()) return path.join(dir, visible[0]!.name);
  return dir;
}

async function readManifest(dir: string): Promise<ModelSettings> {
  let text: string;
  try {
    text = await readFile(path.join(dir, MANIFEST_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new EdgeInferError('EI_PACKAGE_INVALID', [dir, `${MANIFEST_FILE}: ${messageOf(error)}`], error);
  }
  try {
    return JSON.parse(text) as ModelSettings;
  } catch (error) {
    throw new EdgeInferError('EI_PACKAGE_INVALID', [dir, `${MANIFEST_FILE} is not valid JSON: ${messageOf(error)}`], error);
  }
}

function checked(location: string, settings: ModelSettings): ModelSettings {
  const problem = findSettingsProblem(settings);
  if (problem) throw new EdgeInferError('EI_PACKAGE_INVALID', [location, `${MANIFEST_FILE} or model settings, ${problem}`]);
  return settings;
}

async function pickModelFile(dir: string, files: string[], settings: ModelSettings, hasScript: boolean): Promise<string | undefined> {
  if (settings.model) {
    const file = resolveInside(dir, settings.model);
    await stat(file).catch((error: unknown) => {
      throw new EdgeInferError('EI_PACKAGE_INVALID', [dir, `"model": "${settings.model}" names no file in the package`], error);
    });
    return file;
  }
  const models = files.filter((f) => f.toLowerCase().endsWith('.onnx'));
  if (models.length === 1) return path.join(dir, models[0]!);
  if (models.length === 0 && hasScript) return undefined;
  const why =
    models.length === 0
      ? 'it holds no .onnx file and no score.mjs'
      : `it holds ${models.length} .onnx files (${models.join(', ')}); name the model in ${MANIFEST_FILE} as "model"`;
  throw new EdgeInferError('EI_PACKAGE_INVALID', [dir, why]);
}
