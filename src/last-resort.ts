/**
 * The last resort: an error that no code path caught. Each is logged with its cause; whether the module then
 * goes on depends on where the error came from (README, "Security"):
 *
 * - a promise rejection nobody handled: no synchronous code was cut half-way, so the module goes on;
 * - an uncaught exception (the module's own code, a library's, Node's): something was cut half-way and the
 *   module's state cannot be trusted, so it exits with code 1; IoT Edge restarts it and the store serves the
 *   last versions again, offline.
 *
 * Entry scripts never reach it: each runs in a worker thread of its own (engine/script-worker-thread.ts), where
 * a throw ends that worker alone.
 *
 * More than BURST_LIMIT caught within BURST_WINDOW_MS is a loop, not an accident: the module exits then too.
 */
import type { Logger } from 'pino';

export const BURST_LIMIT = 20;
export const BURST_WINDOW_MS = 60_000;

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
  process.on('uncaughtException', (error) => caught('an uncaught exception', error, false));
}
