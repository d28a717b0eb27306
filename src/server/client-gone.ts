/**
 * A signal that aborts when an HTTP client goes away (its connection closes) before its answer is written, so
 * that a request still waiting for admission leaves the queue instead of being scored for nobody.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

export function clientGone(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  // The request stream itself is destroyed once its body was read; its socket tells whether the client is there.
  if (request.raw.socket?.destroyed) controller.abort();
  // 'close' also comes after a response was written (the exchange ended); only before that is the client gone.
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}
