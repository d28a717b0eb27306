/**
 * Request ids: the caller's `x-request-id` (or Azure ML's older `x-ms-request-id`) is kept, otherwise one is
 * made; either way both headers carry it back and every log line of the request has it.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

/** Only ids that are safe to echo and log: short, printable, no separators that could forge a log line. */
const SAFE_ID = /^[\w.:@/+=-]{1,128}$/;

export function requestIdOf(request: IncomingMessage): string {
  for (const name of ['x-request-id', 'x-ms-request-id']) {
    const value = request.headers[name];
    if (typeof value === 'string' && SAFE_ID.test(value)) return value;
  }
  return randomUUID();
}

export function installRequestIdHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    reply.header('x-ms-request-id', request.id);
  });
}
