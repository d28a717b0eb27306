import path from 'node:path';
import { EdgeInferError } from '../errors.js';

/**
 * A path named by a package (its manifest, its script) resolved inside the package folder.
 * A name that climbs out (`../x`, `/etc/x`) is refused: a package only reads its own files.
 */
export function resolveInside(packageDir: string, name: string): string {
  const root = path.resolve(packageDir);
  const resolved = path.resolve(root, name);
  if (resolved !== root && !resolved.startsWith(root + path.sep)) {
    throw new EdgeInferError('EI_PACKAGE_INVALID', [packageDir, `"${name}" points outside the package`]);
  }
  return resolved;
}
