/**
 * What the admin commands (`activate`, `promote`) share: the module's address and scoring key, read as the
 * module reads them, and one request to its local REST route. The one process that serves models is also the
 * one that switches them.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseKeys } from '../config/settings.js';
import { messageOf } from '../errors.js';
import { askLocalModule } from './local-module.js';

export const ADMIN_OPTIONS = `[--port N] [--host ADDRESS] [--keys-file FILE]`;

export const ADMIN_NOTE = `  PORT, HOST and EDGE_INFER_KEYS are read as the module reads them; the module is asked over HTTPS where it
  serves HTTPS.`;

export interface AdminCommand {
  usage: string;
  /** How many positional arguments it takes. */
  positionals: number;
  /** The route and JSON body for the positionals. */
  request(positionals: string[]): { path: string; body: unknown };
  /** The line printed when the module answered 200, from its body (the model's status). */
  done(positionals: string[], answer: { version?: string }): string;
}

/** Returns the process exit code: 0 done, 1 refused or failed, 2 bad usage. */
export async function runAdminCommand(command: AdminCommand, argv: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { port: { type: 'string' }, host: { type: 'string' }, 'keys-file': { type: 'string' } },
    });
  } catch (error) {
    out(`${messageOf(error)}\n\n${command.usage}`);
    return 2;
  }
  const { positionals, values } = parsed;
  if (positionals.length !== command.positionals || positionals.some((p) => p === '')) {
    out(command.usage);
    return 2;
  }
  const keys = parseKeys(values['keys-file'] ? readFileSync(values['keys-file'], 'utf8') : (env.EDGE_INFER_KEYS ?? ''));
  const host = values.host ?? env.HOST;
  const port = Number(values.port ?? env.PORT ?? '5001');
  const { path, body } = command.request(positionals);
  try {
    const answer = await askLocalModule({
      ...(host ? { host } : {}),
      port,
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(keys[0] ? { authorization: `Bearer ${keys[0]}` } : {}) },
      body: JSON.stringify(body),
    });
    const parsedAnswer = JSON.parse(answer.text) as { version?: string; error?: { code: string; message: string } };
    if (answer.status === 200) {
      out(command.done(positionals, parsedAnswer));
      return 0;
    }
    out(`${parsedAnswer.error?.code ?? answer.status}: ${parsedAnswer.error?.message ?? answer.text.slice(0, 200)}`);
    return 1;
  } catch (error) {
    out(`cannot reach the module at port ${port}${host ? ` on ${host}` : ''}: ${messageOf(error)}`);
    return 1;
  }
}
