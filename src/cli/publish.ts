/**
 * `edge-infer publish`: a packed model version → the desired state that rolls it out, checked by the module's
 * own desired-state validation. By default the twin patch (`az iot hub module-twin update --desired`, or a
 * `--desired` file); with `--layered`, a layered deployment's content (`az iot edge deployment create
 * --layered --content`), which sets only `properties.desired.models.<name>` and so leaves other slots alone.
 * With `--candidate`, the version is the slot's candidate instead (`models.<name>.candidate`): shadowed, not served.
 */
import { parseArgs } from 'node:util';
import { checkCandidate, checkSlot } from '../config/desired-state.js';
import { messageOf } from '../errors.js';
import { hashFile } from '../models/hash-file.js';

export const PUBLISH_USAGE = `Usage: edge-infer publish --name NAME --version VERSION --uri URI (--sha256 HEX | --file FILE)
                         [--target cpu|gpu|fpga] [--candidate [--shadow-share SHARE]] [--layered] [--module MODULE]

  Prints the desired state that makes model NAME serve VERSION from URI (where the package from
  edge-infer pack was uploaded; --file computes its sha256). --candidate makes VERSION the slot's candidate
  instead, shadowed on SHARE (0-1, default 0.1) of its inputs. --layered prints a layered deployment's
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
        candidate: { type: 'boolean' },
        'shadow-share': { type: 'string' },
        module: { type: 'string', default: 'edge-infer' },
      },
    }));
  } catch (error) {
    out(`${messageOf(error)}\n\n${PUBLISH_USAGE}`);
    return 2;
  }
  const { name, version, uri, file, target, layered, module, candidate } = values;
  const share = values['shadow-share'];
  if (!name || !version || !uri || Boolean(values.sha256) === Boolean(file) || (share !== undefined && !candidate)) {
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
  const fields = { version, uri, sha256: sha256.toLowerCase(), ...(target ? { target } : {}) };
  const slot = candidate ? checkCandidate(name, { ...fields, ...(share !== undefined ? { shadowShare: Number(share) } : {}) }) : checkSlot(name, fields);
  if (typeof slot === 'string') {
    out(`not published: ${slot}`);
    return 1;
  }
  const where = candidate ? `models.${name}.candidate` : `models.${name}`;
  const document = layered ? { modulesContent: { [module]: { [`properties.desired.${where}`]: slot } } } : { models: { [name]: candidate ? { candidate: slot } : slot } };
  out(JSON.stringify(document, null, 2));
  return 0;
}
