/**
 * `POST /models/{name}/activate` `{"version"}`: switch a model to a version the store still holds, the
 * rollback. `POST /models/{name}/promote`: make its candidate the active version. Behind the scoring keys like
 * every non-probe route; the same operations as the `activate` and `promote` direct methods.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { ServiceOptions } from '../app.js';

const ActivateBody = Type.Object({ version: Type.String({ minLength: 1 }) }, { additionalProperties: false });

export async function adminRoutes(app: FastifyInstance, options: ServiceOptions): Promise<void> {
  const { activate, promote, status } = options;
  if (promote) {
    app.post<{ Params: { name: string } }>('/models/:name/promote', async (request) => {
      const { name } = request.params;
      await promote(name, 'rest');
      return { model: name, ...status.model(name) };
    });
  }
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
