/**
 * `swagger.json`, as an Azure ML web service publishes it: OpenAPI 2.0 with `ServiceInput` and
 * `ServiceOutput` for the default model, inferred from the package's input and output samples (as Azure ML's
 * inference-schema does) or, without samples, from the model's inputs and outputs.
 */
import type { ModelVersion } from '../engine/loaded-version.js';
import type { TensorSpec } from '../engine/tensor.js';

type Schema = Record<string, unknown>;

export interface SwaggerOptions {
  model: ModelVersion | undefined;
  version: string;
  secured: boolean;
}

export function buildSwagger({ model, version, secured }: SwaggerOptions): Schema {
  const security = secured ? [{ Bearer: [] }] : undefined;
  const errorResponse = { description: 'The request failed', schema: { $ref: '#/definitions/ErrorResponse' } };
  const scoreOperation = (operationId: string, extra: Schema[] = []) => ({
    operationId,
    description: 'Run the model on one input: JSON tensors, or an image as the raw body',
    consumes: ['application/json', 'image/jpeg', 'image/png', 'image/webp'],
    parameters: [...extra, { name: 'serviceInputPayload', in: 'body', required: true, description: 'The input payload', schema: { $ref: '#/definitions/ServiceInput' } }],
    responses: { 200: { description: 'Success', schema: { $ref: '#/definitions/ServiceOutput' } }, default: errorResponse },
    ...(security ? { security } : {}),
  });
  return {
    swagger: '2.0',
    info: {
      title: 'edge-infer',
      description: model ? `Scoring service for model "${model.name}" version ${model.version}` : 'Scoring service (no model active yet)',
      version,
    },
    schemes: ['http', 'https'],
    consumes: ['application/json'],
    produces: ['application/json'],
    ...(secured
      ? { securityDefinitions: { Bearer: { type: 'apiKey', name: 'Authorization', in: 'header', description: 'For example: Bearer <key>' } } }
      : {}),
    paths: {
      '/': {
        get: {
          operationId: 'ServiceHealthCheck',
          description: 'Liveness probe',
          produces: ['text/plain'],
          responses: { 200: { description: 'Healthy', schema: { type: 'string', example: 'Healthy' } }, default: errorResponse },
        },
      },
      '/score': { post: scoreOperation('RunMLService') },
      '/models/{name}/score': {
        post: scoreOperation('RunModel', [{ name: 'name', in: 'path', required: true, type: 'string', description: 'The model slot' }]),
      },
    },
    definitions: {
      ServiceInput: model ? inputSchema(model) : { type: 'object' },
      ServiceOutput: model ? outputSchema(model) : { type: 'object' },
      ErrorResponse: {
        type: 'object',
        properties: {
          error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] },
        },
      },
    },
  };
}

function inputSchema(model: ModelVersion): Schema {
  const sample = model.settings.inputSample;
  if (sample !== undefined) return { ...schemaOfSample(sample), example: sample };
  const inputs = model.signature.inputs;
  if (inputs.length === 1) return objectOf({ data: tensorSchema(inputs[0]!) });
  return objectOf({ inputs: objectOf(Object.fromEntries(inputs.map((i) => [i.name, tensorSchema(i)]))) });
}

function outputSchema(model: ModelVersion): Schema {
  const sample = model.settings.outputSample;
  if (sample !== undefined) return { ...schemaOfSample(sample), example: sample };
  switch (model.settings.postprocess?.kind) {
    case 'blazeface':
      return objectOf({
        detections: {
          type: 'array',
          items: objectOf({
            score: { type: 'number', format: 'float' },
            box: { type: 'array', items: { type: 'number' }, description: 'x1, y1, x2, y2 in pixels of the image as sent' },
            keypoints: { type: 'array', items: { type: 'array', items: { type: 'number' } } },
          }),
        },
      });
    case 'classification':
      return objectOf({
        predictions: { type: 'array', items: objectOf({ index: { type: 'integer' }, label: { type: 'string' }, score: { type: 'number' } }) },
      });
    default:
      return objectOf({
        outputs: objectOf(
          Object.fromEntries(
            model.signature.outputs.map((o) => [
              o.name,
              objectOf({ dtype: { type: 'string', example: o.type }, shape: { type: 'array', items: { type: 'integer' } }, data: { type: 'array', items: elementSchema(o.type) } }),
            ]),
          ),
        ),
      });
  }
}

function objectOf(properties: Record<string, Schema>): Schema {
  return { type: 'object', properties };
}

/** A nested array as deep as the tensor's rank. */
function tensorSchema(spec: TensorSpec): Schema {
  let schema = elementSchema(spec.type);
  for (let i = 0; i < spec.shape.length; i++) schema = { type: 'array', items: schema };
  return { ...schema, description: `${spec.type} tensor of shape [${spec.shape.join(', ')}]` };
}

function elementSchema(type: string): Schema {
  if (type === 'float32') return { type: 'number', format: 'float' };
  if (type === 'float64') return { type: 'number', format: 'double' };
  if (type === 'bool') return { type: 'boolean' };
  if (type === 'int64' || type === 'uint64') return { type: 'integer', format: 'int64' };
  return { type: 'integer', format: 'int32' };
}

/** The schema a sample value has (arrays take their first element's). */
export function schemaOfSample(value: unknown): Schema {
  if (Array.isArray(value)) return { type: 'array', items: value.length > 0 ? schemaOfSample(value[0]) : {} };
  if (value === null) return {};
  switch (typeof value) {
    case 'number':
      return Number.isInteger(value) ? { type: 'integer', format: 'int64' } : { type: 'number', format: 'double' };
    case 'string':
      return { type: 'string' };
    case 'boolean':
      return { type: 'boolean' };
    case 'object':
      return objectOf(Object.fromEntries(Object.entries(value).map(([k, v]) => [k, schemaOfSample(v)])));
    default:
      return {};
  }
}
