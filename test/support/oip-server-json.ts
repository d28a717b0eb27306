/**
 * An OIP v2 server written for the tests, behaving as AMD Inference Server does: JSON tensors only (no binary
 * extension), and the repository extension, so a model answers only after `POST /v2/repository/models/{m}/load`.
 * It runs ONNX models with onnxruntime-node, independently of edge-infer's engine, and records every load.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as ort from 'onnxruntime-node';

export interface LoadCall {
  model: string;
  parameters: Record<string, unknown>;
}

export interface JsonOipServer {
  url: string;
  loads: LoadCall[];
  /** Inference requests answered. */
  inferences: number;
  close(): Promise<void>;
}

type Handler = (match: RegExpMatchArray, body: Buffer) => Promise<[number, unknown]>;

const DATATYPES: Record<string, string> = { float32: 'FP32', int64: 'INT64', uint8: 'UINT8', int32: 'INT32', float64: 'FP64' };

/** @param files the ONNX file each model name loads */
export async function startJsonOipServer(files: Record<string, string>): Promise<JsonOipServer> {
  const loaded = new Map<string, ort.InferenceSession>();
  const state: JsonOipServer = { url: '', loads: [], inferences: 0, close: async () => undefined };

  const describe = (name: string, session: ort.InferenceSession) => {
    const spec = (m: ort.InferenceSession.ValueMetadata) => ({
      name: m.name,
      datatype: m.isTensor ? (DATATYPES[m.type] ?? m.type) : 'BYTES',
      shape: m.isTensor ? m.shape.map((d) => (typeof d === 'number' ? d : -1)) : [],
    });
    return { name, versions: ['1'], platform: 'vitis_xmodel', inputs: session.inputMetadata.map(spec), outputs: session.outputMetadata.map(spec) };
  };

  const routes: Array<[string, RegExp, Handler]> = [
    ['GET', /^\/v2$/, async () => [200, { name: 'amdinfer', version: '0.4.0', extensions: ['model_repository'] }]],
    ['GET', /^\/v2\/health\/ready$/, async () => [200, {}]],
    ['GET', /^\/v2\/models\/([^/]+)\/ready$/, async ([, m]) => [loaded.has(m!) ? 200 : 400, loaded.has(m!) ? {} : { error: `model ${m} is not loaded` }]],
    ['GET', /^\/v2\/models\/([^/]+)$/, async ([, m]) => (loaded.has(m!) ? [200, describe(m!, loaded.get(m!)!)] : [400, { error: `model ${m} is not loaded` }])],
    [
      'POST',
      /^\/v2\/repository\/models\/([^/]+)\/load$/,
      async ([, m], body) => {
        const file = files[m!];
        if (!file) return [400, { error: `no model ${m} in the repository` }];
        const request = body.length > 0 ? (JSON.parse(body.toString()) as { parameters?: Record<string, unknown> }) : {};
        state.loads.push({ model: m!, parameters: request.parameters ?? {} });
        await loaded.get(m!)?.release();
        loaded.set(m!, await ort.InferenceSession.create(file));
        return [200, {}];
      },
    ],
    [
      'POST',
      /^\/v2\/models\/([^/]+)\/infer$/,
      async ([, m], body) => {
        const session = loaded.get(m!);
        if (!session) return [400, { error: `model ${m} is not loaded` }];
        const request = JSON.parse(body.toString()) as { inputs: Array<{ name: string; shape: number[]; datatype: string; data: number[] }>; outputs?: Array<{ name: string }> };
        const feeds: Record<string, ort.Tensor> = {};
        for (const input of request.inputs) {
          // The models these tests serve take float32; a real server takes more, which nothing here needs.
          if (input.datatype !== 'FP32') return [400, { error: `datatype ${input.datatype} is not supported` }];
          feeds[input.name] = new ort.Tensor('float32', Float32Array.from(input.data), input.shape);
        }
        const results = await session.run(feeds);
        state.inferences++;
        const names = request.outputs?.map((o) => o.name) ?? Object.keys(results);
        const outputs = names.map((name) => ({ name, datatype: DATATYPES[results[name]!.type], shape: results[name]!.dims, data: Array.from(results[name]!.data as Float32Array) }));
        return [200, { model_name: m, outputs }];
      },
    ],
  ];

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = (request.url ?? '').split('?')[0]!;
      const route = routes.find(([method, pattern]) => method === request.method && pattern.test(path));
      if (request.headers['inference-header-content-length'] !== undefined) {
        response.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'binary tensor data is not supported' }));
        return;
      }
      const answer = route ? route[2](path.match(route[1])!, Buffer.concat(chunks)) : Promise.resolve<[number, unknown]>([404, { error: 'not found' }]);
      answer
        .catch((error: unknown): [number, unknown] => [500, { error: String(error) }])
        .then(([status, body]) => response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body)))
        .catch((error: unknown) => {
          // An answer that cannot be written (a body JSON cannot hold) breaks the connection, so the test sees it.
          console.error('OIP JSON test server:', error);
          response.destroy();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    for (const session of loaded.values()) await session.release();
  };
  return state;
}
