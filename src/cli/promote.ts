/** `edge-infer promote NAME`: a model's candidate becomes its active version, from a shell on the device. */
import { ADMIN_NOTE, ADMIN_OPTIONS, runAdminCommand, type AdminCommand } from './admin-request.js';

export const PROMOTE_USAGE = `Usage: edge-infer promote NAME ${ADMIN_OPTIONS}

  Makes the candidate version of model NAME (its desired "candidate", loaded and shadowed) the version that
  answers, by the same hot swap as any new version.
${ADMIN_NOTE}`;

const PROMOTE: AdminCommand = {
  usage: PROMOTE_USAGE,
  positionals: 1,
  request: ([name]) => ({ path: `/models/${encodeURIComponent(name!)}/promote`, body: {} }),
  done: ([name], answer) => `model ${name} now serves its candidate, version ${answer.version}`,
};

/** Returns the process exit code: 0 promoted, 1 refused or failed, 2 bad usage. */
export function promoteCommand(argv: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  return runAdminCommand(PROMOTE, argv, env, out);
}
