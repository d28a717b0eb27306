/**
 * The one place where errors become HTTP responses: our codes carry their status (errors.ts), fastify's own
 * errors (body limit, content type, JSON syntax, schema validation, a malformed URL, an over-long path
 * parameter, a request that is not HTTP at all) map to our codes first, so every answer has our body.
 * Never a stack trace in a response; 5xx are logged with their cause.
 */
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import type { BaseLogger } from 'pino';
import { EdgeInferError, isEdgeInferError, statusCodeOf } from '../errors.js';
import { IMAGE_CONTENT_TYPES } from '../pipeline/image.js';

const ACCEPTED_SCORE_TYPES = ['application/json', ...IMAGE_CONTENT_TYPES].join(', ');

/** Fastify's errors, as our codes. Anything unknown stays as it is and answers 500. */
export function fromFastifyError(error: FastifyError, request: FastifyRequest, maxBody: number): unknown {
  if (error.validation) return new EdgeInferError('EI_BAD_REQUEST', [`The body does not match the expected form: ${error.message}`]);
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new EdgeInferError('EI_BODY_TOO_LARGE', [maxBody]);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new EdgeInferError('EI_UNSUPPORTED_MEDIA_TYPE', [request.headers['content-type'] ?? '(none)', ACCEPTED_SCORE_TYPES]);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new EdgeInferError('EI_BAD_JSON', ['the body is empty']);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new EdgeInferError('EI_BAD_REQUEST', ['Content-Length does not match the body']);
    case 'FST_ERR_BAD_URL':
      return new EdgeInferError('EI_BAD_REQUEST', ['The URL is not valid (a broken %-escape?)']);
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new EdgeInferError('EI_BAD_REQUEST', [`A name in the path is longer than ${MAX_PARAM_LENGTH} characters`]);
  }
  if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return new EdgeInferError('EI_BAD_JSON', [error.message]);
  return error;
}

/** The Open Inference Protocol answers `{"error": "<message>"}`; everything else `{"error": {"code", "message"}}`. */
function errorBody(url: string, code: string, message: string): unknown {
  return url.startsWith('/v2') ? { error: message } : { error: { code, message } };
}

/** Path parameters (slot names, versions, camera ids) longer than this answer 400 before any route runs. */
export const MAX_PARAM_LENGTH = 100;

/** An error as the module answers it over HTTP: the same on fastify's routes and on the lean infer path. */
export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/**
 * 503s that tell the caller a state the module reports elsewhere, not a fault of this request: the admission bound
 * (metrics), a caller gone, a slot with no active version yet and a camera with no frame yet (status and twin). Logged
 * at debug: at error, every request during a slow load (seconds on a GPU) would log a stack trace.
 */
const STATE_REFUSALS: ReadonlySet<string> = new Set(['EI_OVERLOADED', 'EI_CLIENT_GONE', 'EI_MODEL_NOT_READY', 'EI_CAMERA_NO_FRAME']);

/**
 * Any thrown value as our answer, logged on the request's logger (5xx with the cause). Anything but our own
 * error is a 500 that names the request id, never a stack trace.
 */
export function errorAnswer(thrown: unknown, url: string, requestId: string, log: Pick<BaseLogger, 'debug' | 'error'>): ErrorAnswer {
  const error = isEdgeInferError(thrown) ? thrown : new EdgeInferError('EI_INTERNAL', [requestId], thrown);
  const status = statusCodeOf(error);
  if (STATE_REFUSALS.has(error.code)) log.debug({ code: error.code }, error.message);
  else if (status >= 500) log.error({ err: error.cause ?? error, code: error.code }, error.message);
  else log.debug({ code: error.code }, error.message);
  const headers: Record<string, string> = {};
  if (status === 401) headers['www-authenticate'] = 'Bearer';
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  return { status, headers, body: errorBody(url, error.code, error.message) };
}

function sendError(raw: FastifyError, request: FastifyRequest, reply: FastifyReply, maxBody: number): FastifyReply {
  const answer = errorAnswer(fromFastifyError(raw, request, maxBody), request.url, request.id, request.log);
  return reply.code(answer.status).headers(answer.headers).send(answer.body);
}

/**
 * Fastify's options for the errors it answers before a route or hook runs: a malformed URL or an over-long
 * parameter (`frameworkErrors`), and a connection that does not speak HTTP (`clientErrorHandler`, which has no
 * request to reply on, only the socket).
 */
export function errorHandlingOptions(maxBody: number): Pick<FastifyServerOptions, 'frameworkErrors' | 'clientErrorHandler' | 'routerOptions'> {
  return {
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: (error, request, reply) => void sendError(error, request, reply, maxBody),
    clientErrorHandler: (error: NodeJS.ErrnoException, socket: Socket) => {
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      // Node's own choices of status: 408 for a request that took too long, 431 for oversized headers.
      const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const body = JSON.stringify({ error: { code: 'EI_BAD_REQUEST', message: `The request is not valid HTTP (${STATUS_CODES[status]})` } });
      if (socket.writable) {
        socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      }
      socket.destroy();
    },
  };
}

export function installErrorHandling(app: FastifyInstance, maxBody: number): void {
  app.setErrorHandler((raw: FastifyError, request: FastifyRequest, reply: FastifyReply) => sendError(raw, request, reply, maxBody));
  app.setNotFoundHandler((request, reply) => {
    const error = new EdgeInferError('EI_ROUTE_NOT_FOUND', [request.method, request.url.split('?')[0]]);
    return reply.code(404).send(errorBody(request.url, error.code, error.message));
  });
}
