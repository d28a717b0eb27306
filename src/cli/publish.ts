/**
 * `edge-infer publish`: a packed model version → the desired state that rolls it out, checked by the module's
 * own desired-state validation. By default the twin patch (`az iot hub module-twin update --desired`, or a
 * `--desired` file); with `--layered`, a layered deployment's content (`az iot edge deployment create
 * --layered --content`), which sets only `properties.desired.models.<name>` and so leaves other slots alone.
 */
import { parseArgs } from 'node:util';
import { checkSlot } from '../config/desired-state.js';
import { messageOf } from '../errors.js';
import { hashFile } from '../models/hash-file.js';

export const PUBLISH_USAGE = `Usage: edge-infer publish --name NAME --version VERSION --uri URI (--sha256 HEX | --file FILE)
                         [--target cpu|gpu|fpga] [--layered] [--module MODULE]

  Prints the desired state that makes model NAME serve VERSION from URI (where the package from
  edge-infer pack was uploaded; --file computes its sha256). --layered prints a layered deployment's
  content for module MODULE (default edge-infer) instead of a twin patch.`;

/** Returns the process exit code: 0 printed, 1 refused, 2 bad usage. */
export async function publishCommand(argv: string[], _env: NodeJS.ProcessEnv, out: (line: string) => void): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        name: { type: 'string' },
        version: { type: 'string' },
        uri: { type: 'string' },
        sha256: { type: 'string' },
        file: { type: 'string' },
        target: { type: 'string' },
        layered: { type: 'boolean' },
        module: { type: 'string', default: 'edge-infer' },
      },
    }));
  } catch (error) {
    out(`${messageOf(error)}\n\n${PUBLISH_USAGE}`);
    return 2;
  }
  const { name, version, uri, file, target, layered, module } = values;
  if (!name || !version || !uri || Boolean(values.sha256) === Boolean(file)) {
    out(PUBLISH_USAGE);
    return 2;
  }
  let sha256: string;
  try {
    sha256 = values.sha256 ?? (await hashFile(file!)).digest('hex');
  } catch (error) {
    out(`cannot read ${file}: ${messageOf(error)}`);
    return 1;
  }
  const slot = checkSlot(name, { version, uri, sha256: sha256.toLowerCase(), ...(target ? { target } : {}) });
  if (typeof slot === 'string') {
    out(`not published: ${slot}`);
    return 1;
  }
  const document = layered ? { modulesContent: { [module]: { [`properties.desired.models.${name}`]: slot } } } : { models: { [name]: slot } };
  out(JSON.stringify(document, null, 2));
  return 0;
}
