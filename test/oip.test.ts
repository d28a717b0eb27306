import test from 'ava';
import * as ort from 'onnxruntime-node';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { bundledFace, startService, type TestService } from './support/service.js';

interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: Array<{ name: string; datatype: string; shape: number[]; data?: number[]; parameters?: { binary_data_size: number } }>;
}

const SHAPE = [1, 256, 256, 3];
let service: TestService;
let input: Float32Array;
let expected: Record<string, Float32Array>;

test.before(async () => {
  service = await startService();
  // Pseudo-random pixels in −1..1, the same every run.
  input = new Float32Array(SHAPE.reduce((a, b) => a * b));
  let seed = 7;
  for (let i = 0; i < input.length; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    input[i] = (seed / 2 ** 31) * 2 - 1;
  }
  // The same model, called directly with ONNX Runtime: what every route must reproduce.
  const session = await ort.InferenceSession.create(BUNDLED_MODEL.uri, { logSeverityLevel: 3 });
  const results = await session.run({ 'input:0': new ort.Tensor('float32', input, SHAPE) });
  expected = Object.fromEntries(Object.entries(results).map(([name, tensor]) => [name, tensor.data as Float32Array]));
  await session.release();
});
test.after.always(() => service?.close());

const inferUrl = () => `${service.url}/v2/models/face/infer`;

test('before its first desired state is planned the module is live but not ready; ready once the slot is active', async (t) => {
  // No models: startService then applies no desired state, as a module that has not read its twin or file yet.
  const early = await startService({ models: [] });
  try {
    t.is((await fetch(`${early.url}/v2/health/live`)).status, 200);
    t.is((await fetch(`${early.url}/v2/health/ready`)).status, 503);
    t.true(await early.deploy(bundledFace));
    t.is((await fetch(`${early.url}/v2/health/ready`)).status, 200);
  } finally {
    await early.close();
  }
});

test('server and model metadata, liveness and readiness', async (t) => {
  const server = (await (await fetch(`${service.url}/v2`)).json()) as { name: string; extensions: string[] };
  t.is(server.name, 'edge-infer');
  t.true(server.extensions.includes('binary_tensor_data'));
  t.is((await fetch(`${service.url}/v2/health/live`)).status, 200);
  t.is((await fetch(`${service.url}/v2/health/ready`)).status, 200);
  const model = (await (await fetch(`${service.url}/v2/models/face`)).json()) as { name: string; versions: string[]; inputs: unknown[]; outputs: unknown[] };
  t.is(model.name, 'face');
  t.deepEqual(model.inputs, [{ name: 'input:0', datatype: 'FP32', shape: SHAPE }]);
  t.is(model.outputs.length, 4);
  t.is((await fetch(`${service.url}/v2/models/face/ready`)).status, 200);
  t.is((await fetch(`${service.url}/v2/models/face/versions/${encodeURIComponent(model.versions[0]!)}/ready`)).status, 200);
  t.is((await fetch(`${service.url}/v2/models/face/versions/9/ready`)).status, 503);
  t.is((await fetch(`${service.url}/v2/models/nobody/ready`)).status, 404);
});

test('infer in JSON gives the numbers ONNX Runtime gives', async (t) => {
  const response = await fetch(inferUrl(), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'req-1', inputs: [{ name: 'input:0', shape: SHAPE, datatype: 'FP32', data: Array.from(input) }] }),
  });
  t.is(response.status, 200);
  const body = (await response.json()) as InferResponse;
  t.is(body.model_name, 'face');
  t.is(body.model_version, BUNDLED_MODEL.version);
  t.is(body.id, 'req-1');
  t.is(body.outputs.length, 4);
  for (const output of body.outputs) {
    t.is(output.datatype, 'FP32');
    t.deepEqual(Float32Array.from(output.data!), expected[output.name]);
  }
});

test('infer with binary tensor data, in and out, gives the same numbers', async (t) => {
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'input:0', shape: SHAPE, datatype: 'FP32', parameters: { binary_data_size: bytes.length } }],
      outputs: [{ name: 'Identity_2:0', parameters: { binary_data: true } }, { name: 'Identity:0', parameters: { binary_data: true } }, { name: 'Identity_1:0' }],
    }),
  );
  const response = await fetch(inferUrl(), {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    body: Buffer.concat([header, bytes]),
  });
  t.is(response.status, 200);
  const headerLength = Number(response.headers.get('inference-header-content-length'));
  const raw = Buffer.from(await response.arrayBuffer());
  const body = JSON.parse(raw.subarray(0, headerLength).toString()) as InferResponse;
  t.deepEqual(body.outputs.map((o) => o.name), ['Identity_2:0', 'Identity:0', 'Identity_1:0']);
  let offset = headerLength;
  for (const output of body.outputs.slice(0, 2)) {
    const size = output.parameters!.binary_data_size;
    const copy = raw.subarray(offset, offset + size);
    offset += size;
    t.deepEqual(new Float32Array(copy.buffer.slice(copy.byteOffset, copy.byteOffset + size)), expected[output.name]);
  }
  t.is(offset, raw.length);
  t.deepEqual(Float32Array.from(body.outputs[2]!.data!), expected['Identity_1:0']);
});

test('concurrent binary requests with different tensors each get their own answer (body buffers are reused)', async (t) => {
  const zeros = new Float32Array(input.length);
  const session = await ort.InferenceSession.create(BUNDLED_MODEL.uri, { logSeverityLevel: 3 });
  const zeroScores = (await session.run({ 'input:0': new ort.Tensor('float32', zeros, SHAPE) }))['Identity:0']!.data as Float32Array;
  await session.release();
  const send = async (data: Float32Array) => {
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const header = Buffer.from(
      JSON.stringify({ inputs: [{ name: 'input:0', shape: SHAPE, datatype: 'FP32', parameters: { binary_data_size: bytes.length } }], outputs: [{ name: 'Identity:0' }] }),
    );
    const response = await fetch(inferUrl(), { method: 'POST', headers: { 'inference-header-content-length': String(header.length) }, body: Buffer.concat([header, bytes]) });
    return Float32Array.from(((await response.json()) as InferResponse).outputs[0]!.data!);
  };
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => send(i % 2 ? zeros : input)));
  answers.forEach((answer, i) => t.deepEqual(answer, i % 2 ? zeroScores : expected['Identity:0'], `request ${i}`));
});

test('binary_data_output asks for every output in binary', async (t) => {
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const header = Buffer.from(
    JSON.stringify({ parameters: { binary_data_output: true }, inputs: [{ name: 'input:0', shape: SHAPE, datatype: 'FP32', parameters: { binary_data_size: bytes.length } }] }),
  );
  const response = await fetch(inferUrl(), {
    method: 'POST',
    headers: { 'inference-header-content-length': String(header.length) },
    body: Buffer.concat([header, bytes]),
  });
  t.is(response.status, 200);
  const raw = Buffer.from(await response.arrayBuffer());
  const headerLength = Number(response.headers.get('inference-header-content-length'));
  const body = JSON.parse(raw.subarray(0, headerLength).toString()) as InferResponse;
  const total = body.outputs.reduce((sum, o) => sum + o.parameters!.binary_data_size, 0);
  t.is(raw.length, headerLength + total);
  t.is(total, Object.values(expected).reduce((sum, a) => sum + a.byteLength, 0));
});

test('errors answer {"error": "<message>"} with the right status', async (t) => {
  const shortHeader = JSON.stringify({ inputs: [{ name: 'input:0', shape: [1, 2], datatype: 'FP32', parameters: { binary_data_size: 8 } }] });
  const cases: Array<[string, RequestInit, number, RegExp]> = [
    [`${service.url}/v2/models/nobody/infer`, { method: 'POST', body: '{}' }, 404, /nobody/],
    [inferUrl(), { method: 'POST', body: '{"inputs": [' }, 400, /JSON/],
    [inferUrl(), { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'input:0', shape: [1], datatype: 'FP32' }], extra: 1 }).replace('"shape":[1]', '"shape":"x"') }, 400, /shape/],
    [inferUrl(), { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'input:0', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] }) }, 422, /\[1,256,256,3\]/],
    [inferUrl(), { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] }) }, 422, /no input "x"/],
    [inferUrl(), { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'input:0', shape: SHAPE, datatype: 'INT32', data: [1] }] }) }, 422, /float32/],
    [
      inferUrl(),
      { method: 'POST', headers: { 'inference-header-content-length': String(shortHeader.length) }, body: `${shortHeader}abcd` },
      400,
      /declares 8 bytes; 4 remain/,
    ],
    [`${service.url}/v2/models/face/versions/42/infer`, { method: 'POST', body: '{}' }, 404, /version "42"/],
  ];
  for (const [url, init, status, message] of cases) {
    const response = await fetch(url, init);
    t.is(response.status, status, `${url} ${String(init.body).slice(0, 60)}`);
    const body = (await response.json()) as { error: string };
    t.is(typeof body.error, 'string');
    t.regex(body.error, message);
  }
});
