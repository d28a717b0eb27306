/**
 * The floor for any Node HTTP service here: a bare node:http server that runs the same model, with the same
 * session options, in process and answers Open Inference Protocol binary requests in binary. No routing, no
 * validation, no metrics: what is left is loopback transfer, the event loop and ONNX Runtime.
 * Run as a child process by run.ts: `node bare-server.js MODEL_FILE` prints its port.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadOnnxModel } from '../src/engine/onnx-session.js';

const model = await loadOnnxModel(process.argv[2]!);
const input = model.signature.inputs[0]!;

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const body = Buffer.concat(chunks);
    const headerLength = Number(request.headers['inference-header-content-length']);
    const header = JSON.parse(body.toString('utf8', 0, headerLength)) as { inputs: Array<{ shape: number[] }> };
    const bytes = body.subarray(headerLength);
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    model.run({ [input.name]: { type: 'float32', dims: header.inputs[0]!.shape, data } }).then((outputs) => {
      const parts: Buffer[] = [];
      const described = Object.entries(outputs).map(([name, t]) => {
        parts.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
        return { name, datatype: 'FP32', shape: t.dims, parameters: { binary_data_size: t.data.byteLength } };
      });
      const json = Buffer.from(JSON.stringify({ model_name: 'face', model_version: '1', outputs: described }));
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'inference-header-content-length': json.length });
      response.end(Buffer.concat([json, ...parts]));
    }).catch((error: unknown) => {
      // A failed run answers 500 and the bench reports a failed request; unhandled, it would end this server.
      process.stderr.write(`bare server: ${String(error)}\n`);
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
// Exits rather than dies on the bench's SIGTERM, so that a --cpu-prof profile is written.
process.on('SIGTERM', () => process.exit(0));
