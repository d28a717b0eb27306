/**
 * `edge-infer activate NAME VERSION`: the rollback from a shell on the device. It asks the running module
 * over its local REST route, so that the one process that serves models is also the one that switches them.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseKeys } from '../config/settings.js';
import { messageOf } from '../errors.js';
import { askLocalModule } from './local-module.js';

export const ACTIVATE_USAGE = `Usage: edge-infer activate NAME VERSION [--port N] [--host ADDRESS] [--keys-file FILE]

  Switches model NAME of the module running on this device to VERSION, which its store must hold.
  PORT, HOST and EDGE_INFER_KEYS are read as the module reads them; the module is asked over HTTPS where it
  serves HTTPS.`;

/** Returns the process exit code: 0 switched, 1 refused or failed, 2 bad usage. */
export async function activateCommand(argv: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { port: { type: 'string' }, host: { type: 'string' }, 'keys-file': { type: 'string' } },
    });
  } catch (error) {
    out(`${messageOf(error)}\n\n${ACTIVATE_USAGE}`);
    return 2;
  }
  const [name, version] = parsed.positionals;
  if (!name || !version || parsed.positionals.length !== 2) {
    out(ACTIVATE_USAGE);
    return 2;
  }
  const { values } = parsed;
  const keys = parseKeys(values['keys-file'] ? readFileSync(values['keys-file'], 'utf8') : (env.EDGE_INFER_KEYS ?? ''));
  const host = values.host ?? env.HOST;
  const port = Number(values.port ?? env.PORT ?? '5001');
  const path = `/models/${encodeURIComponent(name)}/activate`;
  try {
    const answer = await askLocalModule({
      ...(host ? { host } : {}),
      port,
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(keys[0] ? { authorization: `Bearer ${keys[0]}` } : {}) },
      body: JSON.stringify({ version }),
    });
    const body = JSON.parse(answer.text) as { version?: string; error?: { code: string; message: string } };
    if (answer.status === 200) {
      out(`model ${name} now serves version ${body.version}`);
      return 0;
    }
    out(`${body.error?.code ?? answer.status}: ${body.error?.message ?? answer.text.slice(0, 200)}`);
    return 1;
  } catch (error) {
    out(`cannot reach the module at port ${port}${host ? ` on ${host}` : ''}: ${messageOf(error)}`);
    return 1;
  }
}
