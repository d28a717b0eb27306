/**
 * The Open Inference Protocol's infer exchange without its transport: read the body, admit, decode, run,
 * encode. Fastify's route (routes/oip.ts) and the lean path beside it (lean-infer.ts) both call it, so the two
 * answer alike. Infer bodies are read whole and decoded here: JSON alone, or JSON followed by binary tensors,
 * whatever content type the client states (v2 clients differ on it).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { EdgeInferError } from '../errors.js';
import type { ModelRegistry } from '../models/registry.js';
import { DECLINED, scanJson } from '../pipeline/json-scan.js';
import { decodeInferRequest, encodeInferResponse, HEADER_LENGTH, type EncodedInferResponse } from '../pipeline/oip-codec.js';
import type { Metrics } from '../status/metrics.js';
import { BodyBufferPool, readAlignedBody } from './aligned-body.js';
import { checkJsonDepth, MAX_JSON_DEPTH } from './json-depth.js';

/** The infer routes, as fastify declares them and as the metrics label them on either path. */
export const INFER_ROUTE = '/v2/models/:name/infer';
export const VERSION_INFER_ROUTE = '/v2/models/:name/versions/:version/infer';

/** JSON parts shorter than this skip the scanner: too small to hold a tensor whose nested arrays would cost much. */
const SCAN_FROM_BYTES = 4096;

export interface OipInferOptions {
  registry: ModelRegistry;
  metrics: Metrics;
  /** Largest accepted body, in bytes. */
  maxBody: number;
}

export class OipInfer {
  readonly #bodies = new BodyBufferPool();
  readonly #options: OipInferOptions;

  constructor(options: OipInferOptions) {
    this.#options = options;
  }

  /** A request the model would refuse anyway is refused before its body is read. */
  refuseIfFull(name: string): void {
    this.#options.registry.refuseIfFull(name);
  }

  /** The whole body, its binary part 8-byte aligned (aligned-body.ts); give it back with release(). */
  readBody(payload: IncomingMessage, headerLength: number | undefined): Promise<Buffer> {
    return readAlignedBody(payload, this.#options.maxBody, this.#bodies, headerLength);
  }

  /** Once the response is out, nothing views the body any more: its buffer can serve again. */
  release(body: unknown): void {
    if (Buffer.isBuffer(body)) this.#bodies.give(body);
  }

  async infer(name: string, version: string | undefined, body: Buffer | undefined, headerLength: number | undefined, signal: AbortSignal): Promise<EncodedInferResponse> {
    if (body === undefined || body.length === 0) throw new EdgeInferError('EI_BAD_REQUEST', ['The infer request has no body']);
    // The scanner reads JSON tensors straight into typed arrays; what it declines, and a JSON part too small to
    // hold a tensor worth scanning (a binary request's header: names, shapes, sizes), takes the reference path:
    // the nesting checked here, JSON.parse in decodeInferRequest. Both give the same answers and errors; for a
    // header JSON.parse is the cheaper (the scanner sets up a block of 8 KiB per body; bench/oip-cpu.ts).
    const jsonEnd = Math.min(headerLength ?? body.length, body.length);
    const scanned = jsonEnd < SCAN_FROM_BYTES ? DECLINED : scanJson(body, 0, jsonEnd, MAX_JSON_DEPTH);
    if (scanned === DECLINED) checkJsonDepth(body, 0, jsonEnd);
    const { registry, metrics } = this.#options;
    return registry.use(
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
      signal,
    );
  }
}

/** The JSON header's length in bytes; anything but a whole number of bytes is a bad request, not a 500. */
export function headerLengthOf(headers: IncomingHttpHeaders): number | undefined {
  const value = headers[HEADER_LENGTH];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{1,15}$/.test(value.trim())) {
    throw new EdgeInferError('EI_BAD_REQUEST', [`Inference-Header-Content-Length must be a whole number of bytes, not "${String(value).slice(0, 40)}"`]);
  }
  return Number(value);
}
