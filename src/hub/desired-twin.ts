/**
 * The module twin's desired properties as one state: the full twin on (re)connect replaces it, patches merge
 * into it (`null` deletes) in `$version` order, and one not newer than the last applied is ignored.
 */
import { mergePatch, readDesiredState, type DesiredState } from '../config/desired-state.js';

export class DesiredTwin {
  #document: Record<string, unknown> = {};
  #version = -1;

  /** The whole desired document (after a connect). */
  replace(desired: Record<string, unknown>): DesiredState | string {
    this.#document = desired;
    this.#version = typeof desired.$version === 'number' ? desired.$version : -1;
    return readDesiredState(this.#document);
  }

  /** A patch; undefined when it is not newer than what was applied. */
  patch(patch: Record<string, unknown>): DesiredState | string | undefined {
    const version = typeof patch.$version === 'number' ? patch.$version : undefined;
    if (version !== undefined && version <= this.#version) return undefined;
    if (version !== undefined) this.#version = version;
    this.#document = mergePatch(this.#document, patch) as Record<string, unknown>;
    return readDesiredState(this.#document);
  }

  /** The `$version` of the desired properties applied last; -1 before the first read. */
  get version(): number {
    return this.#version;
  }

  /** The output that results go to (contract section 6). */
  outputName(): string {
    const output = this.#document.output as { name?: unknown } | undefined;
    return typeof output?.name === 'string' && output.name ? output.name : 'results';
  }
}
