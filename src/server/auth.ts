/**
 * Scoring keys (Azure ML's key auth): when keys are configured, every route but the liveness and health
 * probes needs `Authorization: Bearer <key>`. Several keys may be valid at once, so a key can be rotated
 * without a moment where clients fail. Failed attempts are counted, and logged at warn with the client's
 * address, at most one line per interval (a flood of guesses must not become a flood of log lines).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { EdgeInferError } from '../errors.js';

/** Probes stay open: the IoT Edge runtime and load balancers call them without a key (HEAD as GET). */
export function isOpenRoute(request: FastifyRequest): boolean {
  const path = request.url.split('?')[0]!;
  const reads = request.method === 'GET' || request.method === 'HEAD';
  // The status page and its scripts hold no data: the page asks for a key and sends it on every data route.
  const page = path === '/ui' || path.startsWith('/ui/assets/');
  return request.method === 'OPTIONS' || (reads && (path === '/' || page)) || path.startsWith('/v2/health/');
}

/** At most one warning per this many milliseconds; the failures in between are counted into the next one. */
export const AUTH_WARN_INTERVAL_MS = 60_000;

/**
 * Compares digests, not keys: equal lengths make timingSafeEqual usable and hide the key's length.
 * Every key is compared, so the time does not tell which one matched.
 */
export function createKeyCheck(keys: readonly string[]): (presented: string) => boolean {
  const digests = keys.map((k) => createHash('sha256').update(k).digest());
  return (presented) => {
    const digest = createHash('sha256').update(presented).digest();
    let match = false;
    for (const d of digests) match = timingSafeEqual(d, digest) || match;
    return match;
  };
}

/** @param onFailure called for every refused request (the metrics counter). */
export function installKeyAuth(app: FastifyInstance, keys: readonly string[], onFailure: () => void = () => undefined): void {
  if (keys.length === 0) return;
  const check = createKeyCheck(keys);
  let lastWarning = -Infinity;
  let unreported = 0;
  const failed = (request: FastifyRequest, why: string) => {
    onFailure();
    unreported++;
    const now = performance.now();
    if (now - lastWarning < AUTH_WARN_INTERVAL_MS) return;
    request.log.warn({ client: request.ip, url: request.url.split('?')[0], failures: unreported }, `a request was refused: ${why} (${unreported} refused since the last such line)`);
    lastWarning = now;
    unreported = 0;
  };
  app.addHook('onRequest', async (request) => {
    if (isOpenRoute(request)) return;
    const header = request.headers.authorization;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (match && check(match[1]!)) return;
    failed(request, header === undefined ? 'no key' : 'a wrong key');
    throw new EdgeInferError('EI_UNAUTHORIZED');
  });
}
