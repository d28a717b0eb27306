/**
 * An OIP v2 server written for the tests, behaving as Triton does for the parts edge-infer uses: models
 * ready from the start, and the binary tensor data extension in both directions (JSON still accepted). It can
 * be slowed down, stopped and started again on the same port, and made to describe another model than it runs.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import * as ort from 'onnxruntime-node';

interface InferInput {
  name: string;
  shape: number[];
  datatype: string;
  data?: number[];
  parameters?: { binary_data_size?: number };
}

export class BinaryOipServer {
  url = '';
  /** Inference requests answered, by wire format. */
  readonly served = { binary: 0, json: 0 };
  /** Inference requests received, answered or not. */
  inferRequests = 0;
  /** Added before each inference answer. */
  delayMs = 0;
  /** A header every request must carry, when set (401 otherwise). */
  requiredAuthorization: string | undefined;
  /** Authorization headers seen, to show that credentials reach the server. */
  readonly authorizations = new Set<string>();
  readonly #sessions = new Map<string, ort.InferenceSession>();
  readonly #metadataFrom = new Map<string, ort.InferenceSession>();
  readonly #sockets = new Set<Socket>();
  #server: http.Server | undefined;
  #port = 0;

  /**
   * @param files the ONNX file each model name runs
   * @param describedAs for a model name, another file whose inputs and outputs its metadata claims
   */
  static async start(files: Record<string, string>, describedAs: Record<string, string> = {}): Promise<BinaryOipServer> {
    const server = new BinaryOipServer();
    for (const [name, file] of Object.entries(files)) server.#sessions.set(name, await ort.InferenceSession.create(file));
    for (const [name, file] of Object.entries(describedAs)) server.#metadataFrom.set(name, await ort.InferenceSession.create(file));
    await server.listen();
    return server;
  }

  /** Starts listening, on the same port as before after a stop. */
  async listen(): Promise<void> {
    const server = http.createServer((request, response) => void this.#handle(request, response));
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(this.#port, '127.0.0.1', resolve));
    this.#port = (server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.#port}`;
    this.#server = server;
  }

  /** Stops as a crashed server would: connections cut, the port closed. */
  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise((resolve) => this.#server?.close(resolve));
  }

  async close(): Promise<void> {
    await this.stop();
    for (const session of [...this.#sessions.values(), ...this.#metadataFrom.values()]) await session.release();
  }

  async #handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const send = (status: number, json: unknown) => response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
    const authorization = request.headers.authorization;
    if (authorization) this.authorizations.add(authorization);
    if (this.requiredAuthorization && authorization !== this.requiredAuthorization) return void send(401, { error: 'unauthorized' });
    const path = (request.url ?? '').split('?')[0]!;
    if (path === '/v2') return void send(200, { name: 'triton', version: '2.50.0', extensions: ['classification', 'binary_tensor_data', 'statistics'] });
    const model = /^\/v2\/models\/([^/]+)(\/ready|\/infer)?$/.exec(path);
    const session = model && this.#sessions.get(model[1]!);
    if (!model || !session) return void send(404, { error: `unknown model or route ${path}` });
    if (model[2] === '/ready') return void send(200, {});
    if (model[2] === undefined) return void send(200, this.#metadata(model[1]!, this.#metadataFrom.get(model[1]!) ?? session));
    this.inferRequests++;
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    try {
      await this.#infer(session, body, request.headers["inference-header-content-length"], response);
    } catch (error) {
      send(400, { error: String(error) });
    }
  }

  #metadata(name: string, session: ort.InferenceSession): unknown {
    const spec = (m: ort.InferenceSession.ValueMetadata) => ({ name: m.name, datatype: m.isTensor && m.type === 'float32' ? 'FP32' : 'INT64', shape: m.isTensor ? m.shape.map((d) => (typeof d === 'number' ? d : -1)) : [] });
    return { name, versions: ['1'], platform: 'onnxruntime_onnx', inputs: session.inputMetadata.map(spec), outputs: session.outputMetadata.map(spec) };
  }

  async #infer(session: ort.InferenceSession, body: Buffer, headerLength: string | string[] | undefined, response: http.ServerResponse): Promise<void> {
    const jsonEnd = headerLength === undefined ? body.length : Number(headerLength);
    const request = JSON.parse(body.toString('utf8', 0, jsonEnd)) as { inputs: InferInput[]; outputs?: Array<{ name: string; parameters?: { binary_data?: boolean } }> };
    let offset = jsonEnd;
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of request.inputs) {
      const size = input.parameters?.binary_data_size;
      // Copied out of the body, so that the tensor's bytes are aligned for Float32Array.
      const values = size === undefined ? Float32Array.from(input.data!) : new Float32Array(new Uint8Array(body.subarray(offset, (offset += size))).buffer);
      feeds[input.name] = new ort.Tensor('float32', values, input.shape);
    }
    const results = await session.run(feeds);
    const binary = headerLength !== undefined;
    this.served[binary ? 'binary' : 'json']++;
    const asked = request.outputs ?? Object.keys(results).map((name) => ({ name, parameters: { binary_data: binary } }));
    const tails: Buffer[] = [];
    const outputs = asked.map(({ name, parameters }) => {
      const tensor = results[name]!;
      const data = tensor.data as Float32Array;
      const head = { name, datatype: 'FP32', shape: tensor.dims };
      if (!parameters?.binary_data) return { ...head, data: Array.from(data) };
      tails.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      return { ...head, parameters: { binary_data_size: data.byteLength } };
    });
    const header = Buffer.from(JSON.stringify({ model_name: 'served', outputs }));
    const headers: Record<string, string | number> = { 'content-type': tails.length > 0 ? 'application/octet-stream' : 'application/json' };
    if (tails.length > 0) headers['inference-header-content-length'] = header.length;
    response.writeHead(200, headers).end(Buffer.concat([header, ...tails]));
  }
}
