/**
 * The Open Inference Protocol (KServe v2), as Triton and AMD Inference Server speak it, so that any v2
 * client can call the module: server and model metadata, health, readiness, and infer in JSON or with
 * the binary tensor data extension. Errors answer `{"error": "<message>"}` (see http-errors.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { toOipDatatype } from '../../engine/dtypes.js';
import { fixedShape, type TensorSpec } from '../../engine/tensor.js';
import { EdgeInferError } from '../../errors.js';
import { HEADER_LENGTH } from '../../pipeline/oip-codec.js';
import type { ServiceOptions } from '../app.js';
import { clientGone } from '../client-gone.js';
import { headerLengthOf, INFER_ROUTE, VERSION_INFER_ROUTE, type OipInfer } from '../oip-infer.js';

interface ModelParams {
  name: string;
  version?: string;
}

/** @param options.oipInfer the infer exchange, shared with the lean path (lean-infer.ts). */
export async function oipRoutes(app: FastifyInstance, options: ServiceOptions & { oipInfer: OipInfer }): Promise<void> {
  const { registry, status, oipInfer } = options;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, payload, done) => {
    let headerLength: number | undefined;
    try {
      headerLength = headerLengthOf(request.headers);
    } catch (error) {
      done(error as Error, undefined);
      return;
    }
    oipInfer.readBody(payload, headerLength).then(
      (body) => done(null, body),
      (error: Error) => done(error, undefined),
    );
  });
  app.addHook('onResponse', async (request) => oipInfer.release(request.body));

  app.get('/v2', async () => ({ name: 'edge-infer', version: options.version, extensions: ['binary_tensor_data'] }));
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = isServerReady();
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  /**
   * Ready once every slot whose version is at hand is active; a slot that failed has nothing to wait for. Before
   * the first desired state is planned there is no slot at all (even the bundled model is one), which is not ready:
   * a client that waited for ready was then answered 503 by /score (seen in CI, Node 22).
   */
  function isServerReady(): boolean {
    const slots = registry.slots();
    return slots.length > 0 && slots.every((name) => registry.active(name) !== undefined || status.model(name)?.status === 'failed');
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
    if (!registry.hasSlot(name)) throw new EdgeInferError('EI_MODEL_NOT_FOUND', [name, registry.slots().join(', ') || '(none)']);
    const active = registry.active(name);
    const isReady = active !== undefined && (version === undefined || version === active.version);
    return reply.code(isReady ? 200 : 503).send({ name, ready: isReady });
  };
  app.get('/v2/models/:name/ready', ready);
  app.get('/v2/models/:name/versions/:version/ready', ready);

  const infer = async (request: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const { name, version } = request.params;
    request.modelName = name;
    const body = Buffer.isBuffer(request.body) ? request.body : undefined;
    const response = await oipInfer.infer(name, version, body, headerLengthOf(request.headers), clientGone(request.raw, reply.raw));
    if (response.headerLength === undefined) return reply.send(response.body);
    return reply.header(HEADER_LENGTH, response.headerLength).type('application/octet-stream').send(response.body);
  };
  const refuseIfFull = async (request: FastifyRequest<{ Params: ModelParams }>) => oipInfer.refuseIfFull(request.params.name);
  app.post(INFER_ROUTE, { onRequest: refuseIfFull }, infer);
  app.post(VERSION_INFER_ROUTE, { onRequest: refuseIfFull }, infer);
}

function describe(spec: TensorSpec) {
  return { name: spec.name, datatype: toOipDatatype(spec.type), shape: fixedShape(spec) };
}
