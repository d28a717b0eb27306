/**
 * Names in request paths follow the desired state's name rule (isValidName): a path naming `__proto__` or
 * `constructor` answers 404 before any route looks it up in an object keyed by names.
 */
import type { FastifyInstance } from 'fastify';
import { isValidName } from '../config/desired-state.js';
import { EdgeInferError } from '../errors.js';
import type { ModelRegistry } from '../models/registry.js';

export function installRouteNameCheck(app: FastifyInstance, registry: ModelRegistry, cameraIds: () => string[]): void {
  app.addHook('preValidation', async (request) => {
    const params = request.params as { name?: string; id?: string } | undefined;
    if (params?.name !== undefined && !isValidName(params.name)) {
      throw new EdgeInferError('EI_MODEL_NOT_FOUND', [params.name.slice(0, 64), registry.slots().join(', ') || '(none)']);
    }
    if (params?.id !== undefined && !isValidName(params.id)) {
      throw new EdgeInferError('EI_CAMERA_NOT_FOUND', [params.id.slice(0, 64), cameraIds().join(', ') || '(none)']);
    }
  });
}
