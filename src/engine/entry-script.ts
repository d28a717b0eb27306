/**
 * Entry scripts, Azure ML's pattern in JavaScript: a package's `score.mjs` exports `init(ctx)`, run once per
 * loaded version, and `run(input, ctx)`, run per request, whose result is sent back as JSON.
 */
import { pathToFileURL } from 'node:url';
import { EdgeInferError, isEdgeInferError, messageOf } from '../errors.js';

export interface EntryScript {
  run(input: unknown): Promise<unknown>;
}

interface EntryModule {
  init?: (ctx: unknown) => unknown;
  run?: (input: unknown, ctx: unknown) => unknown;
}

/**
 * Imports the script and runs its `init`.
 * @param instance distinguishes this load from earlier ones of the same file, so that each loaded version
 *   gets its own module state (ESM caches modules by URL).
 */
export async function loadEntryScript(modelName: string, file: string, instance: string, ctx: object): Promise<EntryScript> {
  let module: EntryModule;
  try {
    module = (await import(`${pathToFileURL(file).href}?instance=${encodeURIComponent(instance)}`)) as EntryModule;
  } catch (error) {
    throw new EdgeInferError('EI_SCRIPT_FAILED', [modelName, 'import', messageOf(error)], error);
  }
  const run = module.run;
  if (typeof run !== 'function') {
    throw new EdgeInferError('EI_PACKAGE_INVALID', [file, 'score.mjs must export an async function run(input, ctx)']);
  }
  if (typeof module.init === 'function') await call(modelName, 'init', () => module.init!(ctx));
  return { run: (input) => call(modelName, 'run', () => run(input, ctx)) };
}

/** Our own coded errors pass through (a script may throw them on purpose); anything else is wrapped. */
async function call(modelName: string, step: string, fn: () => unknown): Promise<unknown> {
  try {
    return await fn();
  } catch (error) {
    if (isEdgeInferError(error)) throw error;
    throw new EdgeInferError('EI_SCRIPT_FAILED', [modelName, step, messageOf(error)], error);
  }
}
