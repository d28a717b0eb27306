/**
 * A signal that aborts when an HTTP client goes away (its connection closes) before its answer is written, so
 * that a request still waiting for admission leaves the queue instead of being scored for nobody.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export function clientGone(request: IncomingMessage, response: ServerResponse): AbortSignal {
  const controller = new AbortController();
  // The request stream itself is destroyed once its body was read; its socket tells whether the client is there.
  if (request.socket?.destroyed) controller.abort();
  // 'close' also comes after a response was written (the exchange ended); only before that is the client gone.
  response.once('close', () => {
    if (!response.writableFinished) controller.abort();
  });
  return controller.signal;
}
