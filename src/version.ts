import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** edge-infer's own version, from package.json (dist/src/version.js sits two folders below it). */
export const SERVICE_VERSION: string = (require('../../package.json') as { version: string }).version;
