/**
 * `state.json` as read back at start: checked for the shape the store writes before anything trusts it. A file
 * of another shape (hand-edited, from another version, cut short by a full disk) is a problem to report and
 * set aside, never a reason to stop the module.
 */
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { isValidName } from '../config/desired-state.js';
import { messageOf } from '../errors.js';

/** What the store needs of each kept version; the placement and settings fields are checked again when loaded. */
const StoredVersionSchema = Type.Object({
  version: Type.String({ minLength: 1 }),
  path: Type.String({ minLength: 1 }),
  sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
  settings: Type.Optional(Type.Object({})),
  promoted: Type.Optional(Type.Literal(true)),
});

const StateFileSchema = Type.Object({
  models: Type.Record(Type.String(), Type.Object({ active: StoredVersionSchema, previous: Type.Array(StoredVersionSchema), candidate: Type.Optional(StoredVersionSchema) })),
});

/** The parsed state, or why it cannot be used ("is not JSON: ...", "has no /models/face/active: ..."). */
export function parseStateFile<T>(text: string): T | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return `is not JSON (${messageOf(error)})`;
  }
  const problem = Value.Errors(StateFileSchema, parsed).First();
  if (problem) return `does not have the store's shape at ${problem.path || '/'}: ${problem.message}`;
  const badName = Object.keys((parsed as { models: object }).models).find((name) => !isValidName(name));
  if (badName !== undefined) return `names a model "${badName}" that breaks the name rule`;
  return parsed as T;
}
