/**
 * `edge-infer health`: the image's HEALTHCHECK. Exits 0 when the module on this host's port answers `GET /` with
 * `Healthy`, over HTTPS or HTTP, whichever it serves (a fixed `http://` check fails on IoT Edge, where the REST
 * API is HTTPS by default).
 */
import { parseArgs } from 'node:util';
import { messageOf } from '../errors.js';
import { askLocalModule } from './local-module.js';

export const HEALTH_USAGE = `Usage: edge-infer health [--port N]

  Exits 0 when the module on this host answers GET / with Healthy (HTTPS or HTTP), 1 otherwise.
  PORT is read as the module reads it.`;

export async function healthCommand(argv: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  let port: string;
  try {
    port = parseArgs({ args: argv, options: { port: { type: 'string' } } }).values.port ?? env.PORT ?? '5001';
  } catch (error) {
    out(`${messageOf(error)}\n\n${HEALTH_USAGE}`);
    return 2;
  }
  try {
    const answer = await askLocalModule({ port: Number(port), path: '/', timeoutMs: 4000 });
    if (answer.status === 200 && answer.text === 'Healthy') return 0;
    out(`the module answered ${answer.status}: ${answer.text.slice(0, 200)}`);
  } catch (error) {
    out(`cannot reach the module on port ${port}: ${messageOf(error)}`);
  }
  return 1;
}
