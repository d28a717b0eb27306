/**
 * The Azure ML scoring contract: `GET /` (liveness), `POST /score` (the default model),
 * `POST /models/{name}/score`, `GET /swagger.json`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EdgeInferError } from '../../errors.js';
import type { ScoreRequest } from '../../engine/loaded-version.js';
import { scoreOn } from '../../models/score.js';
import { IMAGE_CONTENT_TYPES, imageContentType } from '../../pipeline/image.js';
import type { ServiceOptions } from '../app.js';
import { BodyBufferPool, readAlignedBody } from '../aligned-body.js';
import { clientGone } from '../client-gone.js';
import { scanJson, DECLINED } from '../../pipeline/json-scan.js';
import { checkJsonDepth, MAX_JSON_DEPTH } from '../json-depth.js';
import { buildSwagger } from '../swagger.js';

export async function azureMlRoutes(app: FastifyInstance, options: ServiceOptions): Promise<void> {
  const { registry, metrics } = options;
  // Scoped to this plugin: the /v2 routes take other bodies. Plain text is no scoring input: 415, not 400.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser([...IMAGE_CONTENT_TYPES], { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  // The scanner reads tensors straight into typed arrays (pipeline/json-scan.ts). What it declines takes the
  // reference path, which answers as before: JSON's nesting checked before it is parsed, then fastify's own
  // parser (with its prototype checks). The body is read into a reused buffer: a fresh one per request (fastify's
  // buffer parser) cost more in page faults than the copy itself, 3 ms of a 4 MB body (README, "Performance").
  const parseJson = app.getDefaultJsonParser('error', 'error');
  const jsonBodies = new BodyBufferPool();
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', (request, payload, done) => {
    readAlignedBody(payload, options.maxBody, jsonBodies).then((body) => {
      // Nothing parsed keeps the body (the scanner's values and strings are its own, toString copies): it can
      // serve the next request as soon as it is read.
      let text: string;
      try {
        const scanned = scanJson(body, 0, body.length, MAX_JSON_DEPTH);
        if (scanned !== DECLINED) return done(null, scanned);
        checkJsonDepth(body);
        text = body.toString('utf8');
      } catch (error) {
        return done(error as Error, undefined);
      } finally {
        jsonBodies.give(body);
      }
      // fastify's default parser answers through `done` and returns nothing; its type also admits the promise form.
      void parseJson(request, text, done);
    }, (error: Error) => done(error, undefined));
  });

  app.get('/', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('Healthy'));

  const score = async (request: FastifyRequest, reply: FastifyReply, name: string | undefined) => {
    request.modelName = name ?? '';
    const { result } = await scoreOn(
      registry,
      'rest',
      name,
      toScoreRequest(request),
      (model) => metrics.inferenceSeconds.startTimer({ model: model.name, version: model.version }),
      clientGone(request.raw, reply.raw),
    );
    return result;
  };

  // A request the model would refuse anyway is refused before its body is read.
  app.post('/score', { onRequest: async () => registry.refuseIfFull(options.defaultModel()) }, async (request, reply) => score(request, reply, options.defaultModel()));

  app.post<{ Params: { name: string } }>('/models/:name/score', { onRequest: async (request) => registry.refuseIfFull(request.params.name) }, async (request, reply) =>
    score(request, reply, request.params.name),
  );

  app.get('/swagger.json', async () => {
    const name = options.defaultModel();
    return buildSwagger({ model: name ? registry.active(name) : undefined, version: options.version, secured: options.keys.length > 0 });
  });
}

function toScoreRequest(request: FastifyRequest): ScoreRequest {
  const contentType = imageContentType(request.headers['content-type']);
  if (contentType) return { kind: 'image', image: request.body as Buffer, contentType };
  if (request.body === undefined || request.body === null) throw new EdgeInferError('EI_BAD_REQUEST', ['The body is empty; send JSON or an image']);
  return { kind: 'json', body: request.body };
}
