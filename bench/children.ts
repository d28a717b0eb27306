/**
 * Child processes for the benchmark: a free port, a child started and awaited until it says it is ready, the
 * module started the way `npm start` starts it, and a child stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MODULE_MAIN = path.join(root, 'dist/src/main.js');

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts `node ...args` and waits for the first stdout line that satisfies `ready`. */
export async function startChild(args: string[], ready: (line: string) => boolean, env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => ready(l) && resolve(l));
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  return { child, line };
}

/**
 * Sends SIGTERM and waits for the child to exit (the module then stops cleanly, and a --cpu-prof profile is
 * written). A child that already ended, one that failed, sends no second 'exit': it is not waited for.
 */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/**
 * The environment variables and Node flags of package.json's start script (`NAME=value ... node --flag ...
 * dist/src/main.js`): the bench runs the module with them, so that it measures what `npm start` and the
 * images run (README, "Performance": the heap and malloc settings change the figures).
 */
export function startCommand(): { env: Record<string, string>; nodeFlags: string[] } {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const words = pkg.scripts.start.trim().split(/\s+/);
  const node = words.indexOf('node');
  return {
    env: Object.fromEntries(words.slice(0, node).map((word) => word.split('=', 2) as [string, string])),
    nodeFlags: words.slice(node + 1).filter((word) => word.startsWith('--')),
  };
}

/**
 * Starts the module (`node <start flags> <extra flags> dist/src/main.js ...args`) with the start script's
 * environment under `env`; a variable set to undefined in `env` is left out.
 */
export async function startModule(
  args: string[],
  ready: (line: string) => boolean,
  options: { env?: NodeJS.ProcessEnv; nodeFlags?: string[] } = {},
): Promise<{ child: ChildProcess; line: string }> {
  const start = startCommand();
  return startChild([...start.nodeFlags, ...(options.nodeFlags ?? []), MODULE_MAIN, ...args], ready, { ...start.env, ...options.env });
}
