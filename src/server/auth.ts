/**
 * Scoring keys (Azure ML's key auth): when keys are configured, every route but the liveness and health
 * probes needs `Authorization: Bearer <key>`. Several keys may be valid at once, so a key can be rotated
 * without a moment where clients fail; the set lives in a KeyRing, which a watched keys file replaces while the
 * module serves (keys-file.ts). Failed attempts are counted, and logged at warn with the client's address, at
 * most one line per interval (a flood of guesses must not become a flood of log lines). An address with too
 * many wrong keys in a window is answered 429 until the window ends, whatever key it sends, so guessing runs at
 * a few tries a minute.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { BaseLogger } from 'pino';
import { EdgeInferError } from '../errors.js';

/** What the key check reads of a request: fastify's requests and the lean infer path's (lean-infer.ts) alike. */
export interface KeyedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The client's address (the socket's; no proxy headers are trusted). */
  readonly ip: string;
  readonly log: Pick<BaseLogger, 'warn'>;
}

/** Throws EI_UNAUTHORIZED or EI_TOO_MANY_KEY_FAILURES for a request that may not pass. */
export type KeyGate = (request: KeyedRequest) => void;

/** Probes stay open: the IoT Edge runtime and load balancers call them without a key (HEAD as GET). */
export function isOpenRoute(request: Pick<KeyedRequest, 'method' | 'url'>): boolean {
  const path = request.url.split('?')[0]!;
  const reads = request.method === 'GET' || request.method === 'HEAD';
  // The status page and its scripts hold no data: the page asks for a key and sends it on every data route.
  const page = path === '/ui' || path.startsWith('/ui/assets/');
  return request.method === 'OPTIONS' || (reads && (path === '/' || page)) || path.startsWith('/v2/health/');
}

/** At most one warning per this many milliseconds; the failures in between are counted into the next one. */
export const AUTH_WARN_INTERVAL_MS = 60_000;

/** Failed attempts an address may make within a window before it is answered 429. */
export const FAILURES_BEFORE_THROTTLE = 10;
export const THROTTLE_WINDOW_MS = 60_000;
/** Addresses tracked at most; past it the oldest is forgotten, so a spread of addresses cannot grow memory. */
export const THROTTLE_CAPACITY = 10_000;

/** The keys valid now; replaced whole, so a request sees either the old set or the new one. */
export class KeyRing {
  #digests: Buffer[] = [];

  constructor(keys: readonly string[] = []) {
    this.replace(keys);
  }

  replace(keys: readonly string[]): void {
    this.#digests = keys.map((k) => createHash('sha256').update(k).digest());
  }

  /** Named as an array's, so code that only asks "are there keys" reads a list and a ring alike. */
  get length(): number {
    return this.#digests.length;
  }

  /**
   * Compares digests, not keys: equal lengths make timingSafeEqual usable and hide the key's length.
   * Every key is compared, so the time does not tell which one matched.
   */
  matches(presented: string): boolean {
    const digest = createHash('sha256').update(presented).digest();
    let match = false;
    for (const d of this.#digests) match = timingSafeEqual(d, digest) || match;
    return match;
  }
}

/** A check against a fixed list of keys. */
export function createKeyCheck(keys: readonly string[]): (presented: string) => boolean {
  const ring = new KeyRing(keys);
  return (presented) => ring.matches(presented);
}

/** Failures per client address in fixed windows, in a capped map. */
export class FailureThrottle {
  readonly #clients = new Map<string, { since: number; failures: number }>();

  constructor(
    private readonly limit = FAILURES_BEFORE_THROTTLE,
    private readonly windowMs = THROTTLE_WINDOW_MS,
    private readonly capacity = THROTTLE_CAPACITY,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Seconds the address must wait before it may try again; 0 when it may try now. */
  retryAfter(address: string): number {
    const entry = this.#live(address);
    if (!entry || entry.failures < this.limit) return 0;
    return Math.max(1, Math.ceil((entry.since + this.windowMs - this.now()) / 1000));
  }

  failed(address: string): void {
    const entry = this.#live(address);
    if (entry) return void entry.failures++;
    if (this.#clients.size >= this.capacity) this.#clients.delete(this.#clients.keys().next().value!);
    this.#clients.set(address, { since: this.now(), failures: 1 });
  }

  get tracked(): number {
    return this.#clients.size;
  }

  #live(address: string): { since: number; failures: number } | undefined {
    const entry = this.#clients.get(address);
    if (!entry || this.now() - entry.since < this.windowMs) return entry;
    this.#clients.delete(address);
    return undefined;
  }
}

/**
 * The key gate of every route, or undefined when no key can ever be asked for (a fixed, empty list).
 * @param keys a fixed list, or a ring that changes while the app serves; with an empty ring every route is open.
 * @param onFailure called for every refused request (the metrics counter).
 */
export function createKeyGate(keys: readonly string[] | KeyRing, onFailure: () => void = () => undefined, throttle = new FailureThrottle()): KeyGate | undefined {
  const ring = keys instanceof KeyRing ? keys : new KeyRing(keys);
  if (!(keys instanceof KeyRing) && ring.length === 0) return undefined;
  let lastWarning = -Infinity;
  let unreported = 0;
  const failed = (request: KeyedRequest, why: string) => {
    onFailure();
    unreported++;
    const now = performance.now();
    if (now - lastWarning < AUTH_WARN_INTERVAL_MS) return;
    request.log.warn({ client: request.ip, url: request.url.split('?')[0], failures: unreported }, `a request was refused: ${why} (${unreported} refused since the last such line)`);
    lastWarning = now;
    unreported = 0;
  };
  return (request) => {
    if (ring.length === 0 || isOpenRoute(request)) return;
    // Checked before the key, so a throttled address learns nothing about its guesses.
    const wait = throttle.retryAfter(request.ip);
    if (wait > 0) throw new EdgeInferError('EI_TOO_MANY_KEY_FAILURES', [request.ip, wait]).retryAfter(wait);
    const header = request.headers.authorization;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (match && ring.matches(match[1]!)) return;
    // Only a key sent counts as a guess: a probe or a page without a key must not lock out its address.
    if (header !== undefined) throttle.failed(request.ip);
    failed(request, header === undefined ? 'no key' : 'a wrong key');
    throw new EdgeInferError('EI_UNAUTHORIZED');
  };
}

/** Runs the key gate before every fastify route. */
export function installKeyAuth(app: FastifyInstance, gate: KeyGate | undefined): void {
  if (gate) app.addHook('onRequest', async (request) => gate(request));
}
