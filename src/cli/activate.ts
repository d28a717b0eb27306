/** `edge-infer activate NAME VERSION`: the rollback from a shell on the device. */
import { ADMIN_NOTE, ADMIN_OPTIONS, runAdminCommand, type AdminCommand } from './admin-request.js';

export const ACTIVATE_USAGE = `Usage: edge-infer activate NAME VERSION ${ADMIN_OPTIONS}

  Switches model NAME of the module running on this device to VERSION, which its store must hold.
${ADMIN_NOTE}`;

const ACTIVATE: AdminCommand = {
  usage: ACTIVATE_USAGE,
  positionals: 2,
  request: ([name, version]) => ({ path: `/models/${encodeURIComponent(name!)}/activate`, body: { version } }),
  done: ([name], answer) => `model ${name} now serves version ${answer.version}`,
};

/** Returns the process exit code: 0 switched, 1 refused or failed, 2 bad usage. */
export function activateCommand(argv: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  return runAdminCommand(ACTIVATE, argv, env, out);
}
