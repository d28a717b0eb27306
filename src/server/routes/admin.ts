/**
 * `POST /models/{name}/activate` `{"version"}`: switch a model to a version the store still holds, the
 * rollback. Behind the scoring keys like every non-probe route. The same operation as the `activate` direct method.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ServiceOptions } from '../app.js';

const ActivateBody = Type.Object({ version: Type.String({ minLength: 1 }) }, { additionalProperties: false });

export async function adminRoutes(app: FastifyInstance, options: ServiceOptions): Promise<void> {
  const { activate, status } = options;
  if (!activate) return;
  app.post<{ Params: { name: string }; Body: Static<typeof ActivateBody> }>(
    '/models/:name/activate',
    { schema: { body: ActivateBody } },
    async (request) => {
      const { name } = request.params;
      await activate(name, request.body.version);
      return { model: name, ...status.model(name) };
    },
  );
}
