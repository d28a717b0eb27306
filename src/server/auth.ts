/**
 * Scoring keys (Azure ML's key auth): when keys are configured, every route but the liveness and health
 * probes needs `Authorization: Bearer <key>`. Several keys may be valid at once, so a key can be rotated
 * without a moment where clients fail.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { EdgeInferError } from '../errors.js';

/** Probes stay open: the IoT Edge runtime and load balancers call them without a key. */
export function isOpenRoute(request: FastifyRequest): boolean {
  const path = request.url.split('?')[0]!;
  return request.method === 'OPTIONS' || (request.method === 'GET' && path === '/') || path.startsWith('/v2/health/');
}

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

export function installKeyAuth(app: FastifyInstance, keys: readonly string[]): void {
  if (keys.length === 0) return;
  const check = createKeyCheck(keys);
  app.addHook('onRequest', async (request) => {
    if (isOpenRoute(request)) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match || !check(match[1]!)) throw new EdgeInferError('EI_UNAUTHORIZED');
  });
}
