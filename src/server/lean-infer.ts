/**
 * `POST /v2/models/{name}/infer` (and `/versions/{version}/infer`) served on node:http itself, beside fastify.
 * This is the route a v2 client calls in a loop, and fastify's routing, hooks and reply machinery were the
 * largest part of what the module added per binary request (README, "Performance"). Everything a request
 * meets on fastify's route it meets here too, through the same functions: the key gate (auth.ts), admission
 * before the body is read, the infer exchange (oip-infer.ts), request ids (request-id.ts), error answers
 * (http-errors.ts) and the per-request bookkeeping (request-record.ts).
 *
 * Only plain requests come here: a path whose names are letters, digits, `_` and `-` (versions also `.`), with
 * no query and no %-escapes, and only while CORS is off and the service is not closing. Anything else goes on to
 * fastify's route of the same path, which answers alike (test/lean-infer.test.ts holds the two side by side).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { isValidName } from '../config/desired-state.js';
import { HEADER_LENGTH, type EncodedInferResponse } from '../pipeline/oip-codec.js';
import type { KeyGate } from './auth.js';
import { clientGone } from './client-gone.js';
import { errorAnswer } from './http-errors.js';
import { headerLengthOf, INFER_ROUTE, VERSION_INFER_ROUTE, type OipInfer } from './oip-infer.js';
import { requestIdOf } from './request-id.js';
import type { FinishedRequest } from './request-record.js';

// The name is checked by the desired state's own rule (isValidName) below; versions have no rule of their own.
const INFER_PATH = /^\/v2\/models\/([^/]+)(?:\/versions\/([A-Za-z0-9._-]{1,100}))?\/infer$/;

export interface LeanInferOptions {
  oipInfer: OipInfer;
  keyGate: KeyGate | undefined;
  record: (done: FinishedRequest) => void;
  log: Logger;
  /** True once the service has begun to close: fastify then answers 503, so those requests go to it. */
  closing: () => boolean;
}

/** A request handler that takes the requests it serves (true) and leaves the rest to fastify (false). */
export type LeanHandler = (request: IncomingMessage, response: ServerResponse) => boolean;

/** The slot and version of a request the lean path takes; undefined for one it leaves to fastify. */
export function leanInferTarget(method: string | undefined, url: string | undefined): { name: string; version: string | undefined } | undefined {
  if (method !== 'POST') return undefined;
  const match = INFER_PATH.exec(url ?? '');
  return match && isValidName(match[1]!) ? { name: match[1]!, version: match[2] } : undefined;
}

export function createLeanInfer(options: LeanInferOptions): LeanHandler {
  return (request, response) => {
    const target = options.closing() ? undefined : leanInferTarget(request.method, request.url);
    if (!target) return false;
    void serve(options, request, response, target.name, target.version);
    return true;
  };
}

async function serve(options: LeanInferOptions, request: IncomingMessage, response: ServerResponse, name: string, version: string | undefined): Promise<void> {
  const started = performance.now();
  const url = request.url!;
  const id = requestIdOf(request);
  // The same binding fastify gives its request loggers, so a request's lines read alike on either path.
  const log = options.log.child({ reqId: id });
  // fastify names the slot once the body is read and the route's handler runs: earlier refusals count for no slot.
  let modelName = '';
  let body: Buffer | undefined;
  response.once('finish', () => {
    options.oipInfer.release(body);
    const route = version === undefined ? INFER_ROUTE : VERSION_INFER_ROUTE;
    options.record({ method: 'POST', url, route, modelName, statusCode: response.statusCode, ms: performance.now() - started, log });
  });
  try {
    options.keyGate?.({ method: 'POST', url, headers: request.headers, ip: request.socket.remoteAddress!, log });
    options.oipInfer.refuseIfFull(name);
    const headerLength = headerLengthOf(request.headers);
    body = await options.oipInfer.readBody(request, headerLength);
    modelName = name;
    send(response, id, 200, await options.oipInfer.infer(name, version, body, headerLength, clientGone(request, response)));
  } catch (error) {
    const answer = errorAnswer(error, url, id, log);
    // Nothing can be said any more once an answer has begun; ending the connection is what is left.
    if (response.headersSent) return void response.destroy();
    send(response, id, answer.status, { body: answer.body as Record<string, unknown> }, answer.headers);
  }
}

/**
 * Written as fastify writes it: JSON as `application/json; charset=utf-8`, a binary answer with its header
 * length. One writeHead with a flat list of headers: setHeader's per-header bookkeeping showed in profiles.
 */
function send(response: ServerResponse, id: string, status: number, answer: EncodedInferResponse, headers: Record<string, string> = {}): void {
  const binary = answer.headerLength !== undefined;
  const payload = binary ? (answer.body as Buffer) : Buffer.from(JSON.stringify(answer.body));
  const head: string[] = binary ? [HEADER_LENGTH, String(answer.headerLength), 'content-type', 'application/octet-stream'] : ['content-type', 'application/json; charset=utf-8'];
  for (const name in headers) head.push(name, headers[name]!);
  head.push('x-request-id', id, 'x-ms-request-id', id, 'content-length', String(payload.length));
  response.writeHead(status, head);
  response.end(payload);
}
