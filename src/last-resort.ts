/**
 * The last resort: an error that no code path caught. Each is logged with its cause; whether the module then
 * goes on depends on where the error came from (README, "Security"):
 *
 * - a promise rejection nobody handled: no synchronous code was cut half-way, so the module goes on;
 * - an exception thrown from an entry script's own code (a timer or callback in `score.mjs`): the script's
 *   state is its own and requests to it fail on their own, so the module goes on;
 * - any other uncaught exception (the module's own code, a library's, Node's): something was cut half-way and
 *   the module's state cannot be trusted, so it exits with code 1; IoT Edge restarts it and the store serves
 *   the last versions again, offline.
 *
 * More than BURST_LIMIT caught within BURST_WINDOW_MS is a loop, not an accident: the module exits then too.
 */
import type { Logger } from 'pino';
import { ENTRY_SCRIPT_FILE } from './models/package.js';

export const BURST_LIMIT = 20;
export const BURST_WINDOW_MS = 60_000;

/** The first stack frame names the script (`.../score.mjs?instance=...:3:11`). */
const FROM_ENTRY_SCRIPT = new RegExp(`^\\s*at .*[\\\\/]${ENTRY_SCRIPT_FILE.replace('.', '\\.')}[?:]`, 'm');

export function isFromEntryScript(error: unknown): boolean {
  const stack = error instanceof Error ? (error.stack ?? '') : '';
  const firstFrame = stack.split('\n').find((line) => /^\s*at /.test(line)) ?? '';
  return FROM_ENTRY_SCRIPT.test(firstFrame);
}

export function installLastResort(log: Logger, exit: (code: number) => void = (code) => process.exit(code)): void {
  const recent: number[] = [];
  const caught = (kind: string, error: unknown, survivable: boolean) => {
    const now = performance.now();
    recent.push(now);
    while (recent[0]! < now - BURST_WINDOW_MS) recent.shift();
    const goOn = survivable && recent.length <= BURST_LIMIT;
    const cause = error instanceof Error ? error.cause : undefined;
    const fields = { err: error, ...(cause !== undefined ? { cause } : {}), code: 'EI_INTERNAL', lastResort: kind };
    if (goOn) {
      log.error(fields, `${kind}: logged, and the module goes on`);
      return;
    }
    const why = survivable ? `more than ${BURST_LIMIT} in ${BURST_WINDOW_MS / 1000} s` : 'the module cannot trust its own state after it';
    log.fatal(fields, `${kind}: exiting with code 1 (${why}); IoT Edge restarts the module`);
    log.flush?.();
    exit(1);
  };
  process.on('unhandledRejection', (reason) => caught('an unhandled promise rejection', reason, true));
  process.on('uncaughtException', (error) => caught('an uncaught exception', error, isFromEntryScript(error)));
}
