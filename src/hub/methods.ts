/**
 * Direct methods (contract section 7): `getStatus`, `score`, `activate`, and `promote` (README "Candidate versions"). Errors answer with the REST API's
 * status codes and `{"error": {"code", "message"}}`.
 */
import { EdgeInferError, isEdgeInferError, messageOf, statusCodeOf } from '../errors.js';
import type { ModelRegistry } from '../models/registry.js';
import { scoreOn } from '../models/score.js';
import type { PromotedBy, StatusStore } from '../status/store.js';

export interface MethodContext {
  registry: ModelRegistry;
  status: StatusStore;
  defaultModel: () => string | undefined;
  activate: (name: string, version: string) => Promise<void>;
  promote: (name: string, by: PromotedBy) => Promise<void>;
}

export interface MethodAnswer {
  status: number;
  payload: unknown;
}

type Method = (payload: unknown, context: MethodContext) => Promise<unknown>;

const METHODS: Record<string, Method> = {
  getStatus: async (_payload, { status }) => status.snapshot(),

  score: async (payload, { registry, defaultModel }) => {
    const request = (payload ?? {}) as { model?: unknown };
    const name = typeof request.model === 'string' ? request.model : defaultModel();
    const { model: _ignored, ...body } = request;
    const { result, model } = await scoreOn(registry, 'method', name, { kind: 'json', body });
    return { model: model.name, version: model.version, result };
  },

  activate: async (payload, { activate, status }) => {
    const { model, version } = (payload ?? {}) as { model?: unknown; version?: unknown };
    if (typeof model !== 'string' || typeof version !== 'string') {
      throw new EdgeInferError('EI_BAD_REQUEST', ['activate takes {"model": "<name>", "version": "<version>"}']);
    }
    await activate(model, version);
    return { model, ...status.model(model) };
  },

  promote: async (payload, { promote, status }) => {
    const { model } = (payload ?? {}) as { model?: unknown };
    if (typeof model !== 'string') throw new EdgeInferError('EI_BAD_REQUEST', ['promote takes {"model": "<name>"}']);
    await promote(model, 'method');
    return { model, ...status.model(model) };
  },
};

export const METHOD_NAMES = Object.keys(METHODS);

/** Runs a method; never throws. */
export async function callMethod(name: string, payload: unknown, context: MethodContext): Promise<MethodAnswer> {
  try {
    return { status: 200, payload: await METHODS[name]!(payload, context) };
  } catch (error) {
    const coded = isEdgeInferError(error) ? error : new EdgeInferError('EI_INTERNAL', ['(method)'], error);
    return { status: statusCodeOf(coded), payload: { error: { code: coded.code, message: messageOf(coded) } } };
  }
}
