/**
 * `edge-infer pack DIR [--out FILE]`: a model folder → a `.tar.gz` package a desired state can name. It says yes
 * only once the package's `edge-infer.json` is valid and the module itself has loaded the packed archive and run
 * its warm-up inference (the program started on the archive, standalone, with a throw-away store), then prints
 * `<sha256>  <file>` as sha256sum does, for `edge-infer publish` or a pipeline.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tar from 'tar';
import { messageOf } from '../errors.js';
import { hashFile } from '../models/hash-file.js';
import { readModelPackage } from '../models/package.js';
import type { ModelStatus } from '../status/store.js';

export const PACK_USAGE = `Usage: edge-infer pack DIR [--out FILE]

  Packs the model folder DIR (.onnx files, edge-infer.json, score.mjs, labels) into FILE (default:
  DIR's name + .tar.gz), after checking that the module loads it and scores its warm-up input.
  Prints "<sha256>  <FILE>"; edge-infer publish turns it into a desired state.`;

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
/** A slow device may take a while to load a large model; longer than this is a failure to report. */
const LOAD_LIMIT_MS = 180_000;

/** Returns the process exit code: 0 packed, 1 refused or failed, 2 bad usage. */
export async function packCommand(argv: string[], _env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string' } } });
  } catch (error) {
    out(`${messageOf(error)}\n\n${PACK_USAGE}`);
    return 2;
  }
  const [dir] = parsed.positionals;
  if (!dir || parsed.positionals.length !== 1) {
    out(PACK_USAGE);
    return 2;
  }
  const folder = path.resolve(dir);
  const file = path.resolve(parsed.values.out ?? `${path.basename(folder)}.tar.gz`);
  try {
    if (!(await stat(folder)).isDirectory()) throw new Error(`${dir} is not a folder`);
    // The manifest and the model file first: their problems are said plainly, before anything is written.
    await readModelPackage(folder);
    await tar.c({ gzip: true, file, cwd: folder, portable: true }, ['.']);
    const problem = await loadInModule(file);
    if (problem) {
      await rm(file, { force: true });
      out(`${dir} was not packed: ${problem}`);
      return 1;
    }
    out(`${(await hashFile(file)).digest('hex')}  ${path.relative(process.cwd(), file) || file}`);
    return 0;
  } catch (error) {
    out(`${dir} was not packed: ${messageOf(error)}`);
    return 1;
  }
}

/** Serves the archive with the module, standalone, until its slot is active; undefined, or why it failed. */
async function loadInModule(archive: string): Promise<string | undefined> {
  const store = await mkdtemp(path.join(tmpdir(), 'edge-infer-pack-'));
  const child = spawn(process.execPath, [MAIN, '--model', archive, '--name', 'pack', '--port', '0', '--host', '127.0.0.1', '--store', store], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<string>((resolve) => child.once('exit', (code) => resolve(`the module exited with ${code}: ${stderr.trim()}`)));
  try {
    const url = await Promise.race([listeningUrl(child.stdout), exited]);
    if (!url.startsWith('http')) return url;
    const deadline = Date.now() + LOAD_LIMIT_MS;
    while (Date.now() < deadline) {
      const slot = await fetch(`${url}/status`)
        .then((response) => response.json() as Promise<{ models: Record<string, ModelStatus> }>)
        .then((status) => status.models.pack);
      if (slot?.status === 'active') return undefined;
      if (slot?.status === 'failed') return `${slot.error?.code}: ${slot.error?.message}`;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return `the module did not load it within ${LOAD_LIMIT_MS / 1000} s`;
  } finally {
    child.kill('SIGTERM');
    await exited;
    await rm(store, { recursive: true, force: true });
  }
}

/** The address from the server's "Server listening at ..." log line. */
function listeningUrl(stdout: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    createInterface({ input: stdout }).on('line', (line) => {
      const match = /Server listening at (http:\/\/[^"\s]+)/.exec(line);
      if (match) resolve(match[1]!);
    });
  });
}
