/**
 * The store's volume refusing a write, as our codes: full (ENOSPC, a quota) or not writable at all (a read-only
 * mount, wrong owner). Downloads and unpacks both write there; both report these the same way.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { EdgeInferError, messageOf } from '../errors.js';

const FULL = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);
const UNWRITABLE = new Set(['EROFS', 'EACCES', 'EPERM']);

/** `error` as EI_STORE_FULL or EI_STORE_UNWRITABLE when it is one of those; undefined for anything else. */
export function diskError(error: unknown, storePart: string, what: string): EdgeInferError | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? '';
  if (FULL.has(code)) return new EdgeInferError('EI_STORE_FULL', [storePart, what, messageOf(error)], error);
  if (UNWRITABLE.has(code)) return new EdgeInferError('EI_STORE_UNWRITABLE', [storePart, messageOf(error)], error);
  return undefined;
}

/**
 * Runs a store write; a refusal of the volume becomes our code, anything else passes as it is. A recursive
 * mkdir on a read-only volume reports ENOENT, so an error that is not plainly the volume's is checked against
 * write access to the nearest folder that exists.
 */
export async function writingTo<T>(storePart: string, what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw diskError(error, storePart, what) ?? diskError(await writeRefusal(storePart), storePart, what) ?? error;
  }
}

/** Why `folder` (or its nearest existing parent) cannot be written to, or undefined when it can. */
async function writeRefusal(folder: string): Promise<unknown> {
  let existing = folder;
  while (!(await stat(existing).then(() => true, () => false)) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  return access(existing, constants.W_OK).then(
    () => undefined,
    (error: unknown) => error,
  );
}
