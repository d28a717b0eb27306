/**
 * The Open Inference Protocol (KServe v2), as Triton and AMD Inference Server speak it, so that any v2
 * client can call the module: server and model metadata, health, readiness, and infer in JSON or with
 * the binary tensor data extension. Errors answer `{"error": "<message>"}` (see http-errors.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { toOipDatatype } from '../../engine/dtypes.js';
import { fixedShape, type TensorSpec } from '../../engine/tensor.js';
import { EdgeInferError } from '../../errors.js';
import { decodeInferRequest, encodeInferResponse, HEADER_LENGTH } from '../../pipeline/oip-codec.js';
import type { ServiceOptions } from '../app.js';
import { BodyBufferPool, readAlignedBody } from '../aligned-body.js';
import { checkJsonDepth, MAX_JSON_DEPTH } from '../json-depth.js';
import { DECLINED, scanJson } from '../../pipeline/json-scan.js';
import { clientGone } from '../client-gone.js';

/** JSON parts shorter than this skip the scanner: too small to hold a tensor whose nested arrays would cost much. */
const SCAN_FROM_BYTES = 4096;

interface ModelParams {
  name: string;
  version?: string;
}

export async function oipRoutes(app: FastifyInstance, options: ServiceOptions): Promise<void> {
  const { registry, metrics, status } = options;
  // Infer bodies are read whole and decoded here: JSON alone, or JSON followed by binary tensors, whatever
  // content type the client states (v2 clients differ on it).
  const bodies = new BodyBufferPool();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, payload, done) => {
    let headerLength: number | undefined;
    try {
      headerLength = headerLengthOf(request);
    } catch (error) {
      done(error as Error, undefined);
      return;
    }
    readAlignedBody(payload, options.maxBody, bodies, headerLength).then(
      (body) => done(null, body),
      (error: Error) => done(error, undefined),
    );
  });
  // The response is out and the tensors that viewed the body are gone: the body's buffer can serve again.
  app.addHook('onResponse', async (request) => {
    if (Buffer.isBuffer(request.body)) bodies.give(request.body);
  });

  app.get('/v2', async () => ({ name: 'edge-infer', version: options.version, extensions: ['binary_tensor_data'] }));
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = isServerReady();
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  /** Ready once every slot whose version is at hand is active; a slot that failed has nothing to wait for. */
  function isServerReady(): boolean {
    return registry.slots().every((name) => registry.active(name) !== undefined || status.model(name)?.status === 'failed');
  }

  const metadata = async (request: FastifyRequest<{ Params: ModelParams }>) => {
    const { name, version } = request.params;
    const lease = registry.acquire(name, version);
    try {
      const model = lease.model;
      return {
        name: model.name,
        versions: [model.version],
        platform: 'onnxruntime_onnx',
        inputs: model.signature.inputs.map(describe),
        outputs: model.signature.outputs.map(describe),
      };
    } finally {
      lease.release();
    }
  };
  app.get('/v2/models/:name', metadata);
  app.get('/v2/models/:name/versions/:version', metadata);

  const ready = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const { name, version } = request.params;
    if (!registry.slots().includes(name)) throw new EdgeInferError('EI_MODEL_NOT_FOUND', [name, registry.slots().join(', ') || '(none)']);
    const active = registry.active(name);
    const isReady = active !== undefined && (version === undefined || version === active.version);
    return reply.code(isReady ? 200 : 503).send({ name, ready: isReady });
  };
  app.get('/v2/models/:name/ready', ready);
  app.get('/v2/models/:name/versions/:version/ready', ready);

  const infer = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const { name, version } = request.params;
    request.modelName = name;
    const body = request.body;
    if (!Buffer.isBuffer(body) || body.length === 0) throw new EdgeInferError('EI_BAD_REQUEST', ['The infer request has no body']);
    const headerLength = headerLengthOf(request);
    // The scanner reads JSON tensors straight into typed arrays; what it declines, and a JSON part too small to
    // hold a tensor worth scanning (a binary request's header: names, shapes, sizes), takes the reference path:
    // the nesting checked here, JSON.parse in decodeInferRequest. Both give the same answers and errors; for a
    // header JSON.parse is the cheaper (the scanner sets up a block of 8 KiB per body; bench/oip-cpu.ts).
    const jsonEnd = Math.min(headerLength ?? body.length, body.length);
    const scanned = jsonEnd < SCAN_FROM_BYTES ? DECLINED : scanJson(body, 0, jsonEnd, MAX_JSON_DEPTH);
    if (scanned === DECLINED) checkJsonDepth(body, 0, jsonEnd);
    const response = await registry.use(
      'oip',
      name,
      version,
      async (model) => {
        const decoded = decodeInferRequest(model.name, model.signature, body, headerLength, scanned === DECLINED ? undefined : scanned);
        const stop = metrics.inferenceSeconds.startTimer({ model: model.name, version: model.version });
        try {
          const results = await model.infer(decoded.feeds, decoded.outputs);
          return encodeInferResponse(model, decoded, results);
        } finally {
          stop();
        }
      },
      clientGone(request, reply),
    );
    if (response.headerLength === undefined) return reply.send(response.body);
    return reply.header(HEADER_LENGTH, response.headerLength).type('application/octet-stream').send(response.body);
  };
  // A request the model would refuse anyway is refused before its body is read.
  const refuseIfFull = async (request: FastifyRequest<{ Params: ModelParams }>) => registry.refuseIfFull(request.params.name);
  app.post('/v2/models/:name/infer', { onRequest: refuseIfFull }, infer);
  app.post('/v2/models/:name/versions/:version/infer', { onRequest: refuseIfFull }, infer);
}

/** The JSON header's length in bytes; anything but a whole number of bytes is a bad request, not a 500. */
function headerLengthOf(request: FastifyRequest): number | undefined {
  const value = request.headers[HEADER_LENGTH];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{1,15}$/.test(value.trim())) {
    throw new EdgeInferError('EI_BAD_REQUEST', [`Inference-Header-Content-Length must be a whole number of bytes, not "${String(value).slice(0, 40)}"`]);
  }
  return Number(value);
}

function describe(spec: TensorSpec) {
  return { name: spec.name, datatype: toOipDatatype(spec.type), shape: fixedShape(spec) };
}
