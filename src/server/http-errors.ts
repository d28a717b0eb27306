/**
 * The one place where errors become HTTP responses: our codes carry their status (errors.ts), fastify's own
 * errors (body limit, content type, JSON syntax, schema validation) map to our codes first.
 * Never a stack trace in a response; 5xx are logged with their cause.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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
  }
  if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return new EdgeInferError('EI_BAD_JSON', [error.message]);
  return error;
}

/** The Open Inference Protocol answers `{"error": "<message>"}`; everything else `{"error": {"code", "message"}}`. */
function errorBody(request: FastifyRequest, code: string, message: string): unknown {
  return request.url.startsWith('/v2') ? { error: message } : { error: { code, message } };
}

export function installErrorHandling(app: FastifyInstance, maxBody: number): void {
  app.setErrorHandler((raw: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const mapped = fromFastifyError(raw, request, maxBody);
    const error = isEdgeInferError(mapped) ? mapped : new EdgeInferError('EI_INTERNAL', [request.id], raw);
    const status = statusCodeOf(error);
    if (status >= 500) request.log.error({ err: error.cause ?? error, code: error.code }, error.message);
    else request.log.debug({ code: error.code }, error.message);
    if (status === 401) reply.header('www-authenticate', 'Bearer');
    return reply.code(status).send(errorBody(request, error.code, error.message));
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new EdgeInferError('EI_ROUTE_NOT_FOUND', [request.method, request.url.split('?')[0]]);
    return reply.code(404).send(errorBody(request, error.code, error.message));
  });
}
