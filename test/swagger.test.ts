import test from 'ava';
import SwaggerParser from '@apidevtools/swagger-parser';
import { ocrClassifierPath } from './support/fixtures.js';
import { makePackageFolder } from './support/packages.js';
import { startService } from './support/service.js';

type Document = { definitions: Record<string, Record<string, unknown>>; securityDefinitions?: unknown; paths: Record<string, unknown> };

async function swaggerOf(url: string, headers: Record<string, string> = {}): Promise<Document> {
  const response = await fetch(`${url}/swagger.json`, { headers });
  if (response.status !== 200) throw new Error(`swagger.json answered ${response.status}`);
  const document = (await response.json()) as Document;
  // validate() rejects anything that is not valid OpenAPI 2.0; it works on a copy (it dereferences in place).
  await SwaggerParser.validate(structuredClone(document) as never);
  return document;
}

test('the bundled model: valid OpenAPI 2.0, ServiceInput from the model inputs, ServiceOutput the detections', async (t) => {
  const service = await startService({ keys: ['k1'] });
  try {
    const document = await swaggerOf(service.url, { authorization: 'Bearer k1' });
    t.truthy(document.securityDefinitions, 'keys configured: the document says how to send one');
    t.truthy(document.paths['/score']);
    const input = document.definitions.ServiceInput as { properties: { data: { type: string; description: string } } };
    t.is(input.properties.data.type, 'array');
    t.regex(input.properties.data.description, /float32 tensor of shape \[1, 256, 256, 3\]/);
    t.truthy((document.definitions.ServiceOutput as { properties: Record<string, unknown> }).properties.detections);
  } finally {
    await service.close();
  }
});

test('a package with samples: ServiceInput and ServiceOutput follow the samples, with them as examples', async (t) => {
  const fill = (shape: number[]): unknown => (shape.length === 0 ? 0.5 : Array.from({ length: shape[0]! }, () => fill(shape.slice(1))));
  // The sample is also the warm-up input, so it must fit the model: NCHW, 3 channels.
  const inputSample = { data: fill([1, 3, 48, 96]) };
  const outputSample = { direction: 'upright', confidence: 0.98, flags: [true] };
  const folder = await makePackageFolder({ copy: { 'cls.onnx': ocrClassifierPath }, write: { 'edge-infer.json': { inputSample, outputSample } } });
  const service = await startService({ models: [{ name: 'direction', version: '7', uri: folder }] });
  try {
    t.is(service.status.model('direction')?.status, 'active');
    const document = await swaggerOf(service.url);
    t.is(document.securityDefinitions, undefined);
    t.deepEqual(document.definitions.ServiceInput, {
      type: 'object',
      properties: { data: { type: 'array', items: { type: 'array', items: { type: 'array', items: { type: 'array', items: { type: 'number', format: 'double' } } } } } },
      example: inputSample,
    });
    t.deepEqual(document.definitions.ServiceOutput, {
      type: 'object',
      properties: { direction: { type: 'string' }, confidence: { type: 'number', format: 'double' }, flags: { type: 'array', items: { type: 'boolean' } } },
      example: outputSample,
    });
  } finally {
    await service.close();
  }
});
