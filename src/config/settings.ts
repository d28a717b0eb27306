/**
 * Settings from the command line and the environment (contract section 2), checked once at start:
 * a bad setting stops start-up with a message that names it (pino's habit: fail fast at construction).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EdgeInferError, messageOf } from '../errors.js';
import type { TargetName } from '../engine/target.js';
import { DEFAULT_SCRIPT_LIMITS, type ScriptLimits } from '../engine/entry-script.js';
import type { WorkloadIdentity } from '../server/workload-certificate.js';

/** Where the REST API's certificate comes from; server/tls.ts resolves `auto`. */
export type TlsMode = 'auto' | 'workload' | 'files' | 'off';

export interface Settings {
  port: number;
  host: string;
  store: string;
  logLevel: string;
  keys: string[];
  maxBody: number;
  /** The largest model download when its slot names no `size`, in bytes. */
  maxDownload: number;
  /** The most bytes an archive may expand to. */
  maxUnpacked: number;
  corsOrigins: string[];
  tls?: { cert: Buffer; key: Buffer };
  /** Where `tls` was read from, watched for a renewed pair. */
  tlsFiles?: { cert: string; key: string };
  /** `--tls`: where the REST API's certificate comes from (server/tls.ts decides from this, `tls` and `workload`). */
  tlsMode: TlsMode;
  /** The name a workload certificate is issued for (clients check it). */
  tlsName: string;
  /** The IoT Edge workload API, when the runtime started the module. */
  workload?: WorkloadIdentity;
  /** `--keys-file`, watched: a changed file changes the keys without a restart. */
  keysFile?: string;
  /** Where the desired state comes from: the module twin (IoT Edge, or a connection string) or this machine. */
  mode: 'iot-edge' | 'connection-string' | 'standalone';
  /** A module connection string (`--connection-string`). */
  connectionString?: string;
  /** `--desired FILE`: the desired state, watched for changes. */
  desired?: string;
  /** Extra CA certificates (PEM) trusted for downloads. */
  ca?: Buffer;
  /** Versions kept per model besides the active one, for rollback. */
  keepVersions: number;
  /** `--model PATH_OR_URI`: serve this instead of the bundled detector. */
  model?: { uri: string; name: string; sha256?: string };
  /** The local target of `--model` and the bundled model (an accelerator is named in a desired slot). */
  target: Exclude<TargetName, 'fpga'>;
  threads?: number;
  /** `--spin-wait`: ONNX Runtime's threads spin between runs (its own default) instead of sleeping; off unless set. */
  spinWait: boolean;
  /** Admission per model: requests scored at once, and requests that may wait; unset: derived from cores and threads (models/admission.ts). */
  maxInFlight?: number;
  maxWaiting?: number;
  /** The longest a request may expect to wait for its turn (ms, or `auto`); unset: the waiting count alone. */
  maxQueueWait?: number | 'auto';
  /** The ffmpeg that reads cameras: a path, or a name looked up on PATH. */
  ffmpeg: string;
  /** Entry scripts' workers: the load deadline (import and init), the run deadline, the JavaScript heap. */
  scriptLimits: ScriptLimits;
  /** The link to edgeHub: MQTT keep-alive (a silent connection is given up after twice this), and the full twin read that catches missed patches. */
  hub: { keepAliveSeconds: number; twinResyncSeconds: number };
}

export const USAGE = `Usage: edge-infer [options]
       edge-infer activate NAME VERSION [--port N] [--keys-file FILE]   (roll a running module back)
       edge-infer promote NAME [--port N] [--keys-file FILE]            (its candidate becomes the version)
       edge-infer pack DIR [--out FILE]                                   (a model folder → a checked .tar.gz)
       edge-infer publish --name NAME --version VERSION --uri URI ...     (the twin patch naming a version)
       edge-infer profile MODEL_OR_PACKAGE [--target T] ...               (latency, throughput, recommended limits)
       edge-infer health [--port N]                                       (exit 0 when the module here is Healthy)
       edge-infer COMMAND --help                                          (a command's own options)

  --connection-string CS EDGE_INFER_CONNECTION_STRING  a module connection string: the twin holds the desired state
  --desired FILE         EDGE_INFER_DESIRED    the desired state (twin schema), watched for changes
  --ca-file FILE         EDGE_INFER_CA_FILE    extra CA certificates (PEM) for downloads; https_proxy/no_proxy apply
  --keep-versions N      EDGE_INFER_KEEP_VERSIONS  versions kept per model for rollback (default 2)
  --model PATH_OR_URI    serve this model (.onnx, package folder, .tar.gz/.zip, file:// or http(s)://)
  --name NAME            the slot name for --model (default: the file's base name)
  --sha256 HEX           the model's sha256; required for http(s) URIs
  --port N               PORT                  (default 5001)
  --host ADDRESS         HOST                  (default 0.0.0.0)
  --store DIR            EDGE_INFER_STORE      (default ./.edge-infer)
  --log-level LEVEL      LOG_LEVEL             (default info)
  --keys-file FILE       EDGE_INFER_KEYS       scoring keys (the variable holds them comma-separated)
  --max-body SIZE        EDGE_INFER_MAX_BODY   (default 16MiB)
  --max-download SIZE    EDGE_INFER_MAX_DOWNLOAD  largest model download when the slot names no size (default 4GiB)
  --max-unpacked SIZE    EDGE_INFER_MAX_UNPACKED  most bytes an archive may expand to (default 4GiB)
  --cors ORIGINS         EDGE_INFER_CORS       allowed origins, comma-separated, or *
  --tls-cert FILE --tls-key FILE               serve HTTPS with these
  --tls MODE             EDGE_INFER_TLS        auto|workload|files|off (default auto: files if given, else the
                                               IoT Edge workload API's certificate, else plain HTTP)
  --tls-name NAME        EDGE_INFER_TLS_NAME   the workload certificate's name (default: the device's host name)
  --target cpu|gpu       EDGE_INFER_TARGET     (default cpu)
  --threads N            EDGE_INFER_THREADS    ONNX Runtime intra-op threads (default: one per core)
  --spin-wait on|off     EDGE_INFER_SPIN_WAIT  ONNX Runtime's threads spin-wait between runs (default off: they sleep)
  --max-in-flight N      EDGE_INFER_MAX_IN_FLIGHT  requests scored at once per model (default: cores / threads, at least 2)
  --max-waiting N        EDGE_INFER_MAX_WAITING    requests that may wait per model, then 503 (default: 16 x in flight)
  --max-queue-wait MS    EDGE_INFER_MAX_QUEUE_WAIT a request expected to wait longer is refused at once: ms, auto
                                               (the fastest recent inference) or off (default off: the count alone)
  --script-load-timeout S EDGE_INFER_SCRIPT_LOAD_TIMEOUT  an entry script's import and init(), seconds (default 60)
  --script-run-timeout S EDGE_INFER_SCRIPT_RUN_TIMEOUT  an entry script's run() per request, seconds (default 30)
  --script-memory SIZE   EDGE_INFER_SCRIPT_MEMORY  an entry script's JavaScript heap (default 256MiB)
  --ffmpeg PATH          EDGE_INFER_FFMPEG     the ffmpeg that reads cameras (default: ffmpeg on PATH)
  --hub-keepalive S      EDGE_INFER_HUB_KEEPALIVE  MQTT keep-alive to edgeHub in seconds (default 30)
  --twin-resync S        EDGE_INFER_TWIN_RESYNC    full twin read every S seconds (default 300)
  --help`;

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, kib: 1024, m: 1e6, mb: 1e6, mib: 1024 ** 2, g: 1e9, gb: 1e9, gib: 1024 ** 3 };

export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new EdgeInferError('EI_CONFIG_INVALID', [`"${text}" is not a size; write e.g. 16MiB or 1048576`]);
  return Math.floor(Number(match[1]) * unit);
}

function parseInteger(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new EdgeInferError('EI_CONFIG_INVALID', [`${name} must be a whole number from ${min} to ${max}, not "${text}"`]);
  }
  return value;
}

/**
 * Keys, one per line or comma-separated; blank lines and `#` comments are skipped. A key must be what a request
 * can send after "Authorization: Bearer ": one that could never match (a space inside, a control or non-ASCII
 * character) is refused here, naming its place, never its text.
 */
export function parseKeys(text: string): string[] {
  const keys = text
    .split(/[\n,]/)
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((key) => key.length > 0);
  const unusable = keys.findIndex((key) => !/^[\x21-\x7e]+$/.test(key));
  if (unusable >= 0) {
    throw new EdgeInferError('EI_CONFIG_INVALID', [`key ${unusable + 1} holds a space, a control or a non-ASCII character, which no request can send after "Authorization: Bearer "; keys are visible ASCII`]);
  }
  return keys;
}

function readSetting(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new EdgeInferError('EI_CONFIG_INVALID', [`${what} ${file}: ${messageOf(error)}`], error);
  }
}

export function parseSettings(argv: string[], env: NodeJS.ProcessEnv): Settings | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        model: { type: 'string' },
        desired: { type: 'string' },
        'connection-string': { type: 'string' },
        'keep-versions': { type: 'string' },
        'ca-file': { type: 'string' },
        name: { type: 'string' },
        sha256: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        store: { type: 'string' },
        'log-level': { type: 'string' },
        'keys-file': { type: 'string' },
        'max-body': { type: 'string' },
        'max-download': { type: 'string' },
        'max-unpacked': { type: 'string' },
        cors: { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        tls: { type: 'string' },
        'tls-name': { type: 'string' },
        target: { type: 'string' },
        threads: { type: 'string' },
        'spin-wait': { type: 'string' },
        'max-in-flight': { type: 'string' },
        'max-waiting': { type: 'string' },
        'max-queue-wait': { type: 'string' },
        ffmpeg: { type: 'string' },
        'script-load-timeout': { type: 'string' },
        'script-run-timeout': { type: 'string' },
        'script-memory': { type: 'string' },
        'hub-keepalive': { type: 'string' },
        'twin-resync': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    throw new EdgeInferError('EI_CONFIG_INVALID', [`${messageOf(error)}\n\n${USAGE}`], error);
  }
  if (values.help) return 'help';

  const keysText = values['keys-file'] ? readSetting('--keys-file', values['keys-file']).toString('utf8') : (env.EDGE_INFER_KEYS ?? '');
  const target = values.target ?? env.EDGE_INFER_TARGET ?? 'cpu';
  if (target !== 'cpu' && target !== 'gpu') throw new EdgeInferError('EI_CONFIG_INVALID', [`--target must be cpu or gpu, not "${target}"`]);
  if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) {
    throw new EdgeInferError('EI_CONFIG_INVALID', ['--tls-cert and --tls-key go together']);
  }
  if (values.model && /^https?:\/\//i.test(values.model) && !/^[0-9a-f]{64}$/i.test(values.sha256 ?? '')) {
    throw new EdgeInferError('EI_CONFIG_INVALID', ['--model over http(s) needs --sha256 with the 64 hex characters of its sha256']);
  }
  const desired = values.desired ?? env.EDGE_INFER_DESIRED;
  if (desired && values.model) throw new EdgeInferError('EI_CONFIG_INVALID', ['--desired and --model exclude each other: name the model in the desired file']);
  const connectionString = values['connection-string'] ?? env.EDGE_INFER_CONNECTION_STRING;
  // The IoT Edge runtime gives a module these; with them the module twin is the desired state.
  const iotEdge = Boolean(env.IOTEDGE_WORKLOADURI || env.EdgeHubConnectionString);
  const mode = iotEdge ? 'iot-edge' : connectionString ? 'connection-string' : 'standalone';
  if (mode !== 'standalone' && (desired || values.model)) {
    throw new EdgeInferError('EI_CONFIG_INVALID', [`with ${mode === 'iot-edge' ? 'IoT Edge' : 'a connection string'} the module twin holds the desired state; --desired and --model are for standalone mode`]);
  }
  const caFile = values['ca-file'] ?? env.EDGE_INFER_CA_FILE;
  const tlsMode = values.tls ?? env.EDGE_INFER_TLS ?? 'auto';
  if (!['auto', 'workload', 'files', 'off'].includes(tlsMode)) throw new EdgeInferError('EI_CONFIG_INVALID', [`--tls must be auto, workload, files or off, not "${tlsMode}"`]);
  const { IOTEDGE_WORKLOADURI: workloadUri, IOTEDGE_MODULEID: moduleId, IOTEDGE_MODULEGENERATIONID: generationId } = env;
  const threads = values.threads ?? env.EDGE_INFER_THREADS;
  const spinWait = values['spin-wait'] ?? env.EDGE_INFER_SPIN_WAIT ?? 'off';
  if (!['on', 'off'].includes(spinWait)) throw new EdgeInferError('EI_CONFIG_INVALID', [`--spin-wait must be on or off, not "${spinWait}"`]);
  const maxInFlight = values['max-in-flight'] ?? env.EDGE_INFER_MAX_IN_FLIGHT;
  const maxWaiting = values['max-waiting'] ?? env.EDGE_INFER_MAX_WAITING;
  const maxQueueWait = values['max-queue-wait'] ?? env.EDGE_INFER_MAX_QUEUE_WAIT ?? 'off';
  const logLevel = values['log-level'] ?? env.LOG_LEVEL ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new EdgeInferError('EI_CONFIG_INVALID', [`--log-level must be fatal, error, warn, info, debug, trace or silent, not "${logLevel}"`]);
  }
  return {
    port: parseInteger('--port', values.port ?? env.PORT ?? '5001', 0, 65535),
    host: values.host ?? env.HOST ?? '0.0.0.0',
    store: values.store ?? env.EDGE_INFER_STORE ?? './.edge-infer',
    logLevel,
    keys: parseKeys(keysText),
    maxBody: parseSize(values['max-body'] ?? env.EDGE_INFER_MAX_BODY ?? '16MiB'),
    maxDownload: parseSize(values['max-download'] ?? env.EDGE_INFER_MAX_DOWNLOAD ?? '4GiB'),
    maxUnpacked: parseSize(values['max-unpacked'] ?? env.EDGE_INFER_MAX_UNPACKED ?? '4GiB'),
    corsOrigins: (values.cors ?? env.EDGE_INFER_CORS ?? '').split(',').map((o) => o.trim()).filter(Boolean),
    ...(values['tls-cert'] && values['tls-key']
      ? {
          tls: { cert: readSetting('--tls-cert', values['tls-cert']), key: readSetting('--tls-key', values['tls-key']) },
          tlsFiles: { cert: values['tls-cert'], key: values['tls-key'] },
        }
      : {}),
    tlsMode: tlsMode as TlsMode,
    // Clients on the LAN reach the device by the name edgeHub serves under; the module id is the fallback.
    tlsName: values['tls-name'] ?? env.EDGE_INFER_TLS_NAME ?? (env.IOTEDGE_GATEWAYHOSTNAME?.replace(/:\d+$/, '') || moduleId || 'localhost'),
    ...(workloadUri && moduleId && generationId ? { workload: { uri: workloadUri, moduleId, generationId } } : {}),
    ...(values['keys-file'] ? { keysFile: values['keys-file'] } : {}),
    ...(values.model ? { model: { uri: values.model, name: values.name ?? slotNameOf(values.model), sha256: values.sha256 } } : {}),
    target,
    mode,
    ...(connectionString && mode === 'connection-string' ? { connectionString } : {}),
    ...(desired ? { desired } : {}),
    ...(caFile ? { ca: readSetting('--ca-file', caFile) } : {}),
    keepVersions: parseInteger('--keep-versions', values['keep-versions'] ?? env.EDGE_INFER_KEEP_VERSIONS ?? '2', 0, 100),
    ...(threads !== undefined ? { threads: parseInteger('--threads', threads, 1, 256) } : {}),
    spinWait: spinWait === 'on',
    ...(maxInFlight !== undefined ? { maxInFlight: parseInteger('--max-in-flight', maxInFlight, 1, 1024) } : {}),
    ...(maxWaiting !== undefined ? { maxWaiting: parseInteger('--max-waiting', maxWaiting, 0, 65_536) } : {}),
    ...(maxQueueWait === 'off' ? {} : { maxQueueWait: maxQueueWait === 'auto' ? 'auto' : parseInteger('--max-queue-wait', maxQueueWait, 1, 600_000) }),
    ffmpeg: values.ffmpeg ?? env.EDGE_INFER_FFMPEG ?? 'ffmpeg',
    scriptLimits: parseScriptLimits(values, env),
    hub: {
      // IoT Hub refuses keep-alives over 1177 s.
      keepAliveSeconds: parseInteger('--hub-keepalive', values['hub-keepalive'] ?? env.EDGE_INFER_HUB_KEEPALIVE ?? '30', 1, 1177),
      twinResyncSeconds: parseInteger('--twin-resync', values['twin-resync'] ?? env.EDGE_INFER_TWIN_RESYNC ?? '300', 1, 86_400),
    },
  };
}

function parseScriptLimits(values: Record<string, unknown>, env: NodeJS.ProcessEnv): ScriptLimits {
  const text = (flag: string, variable: string, fallback: string) => (values[flag] as string | undefined) ?? env[variable] ?? fallback;
  const seconds = (flag: string, variable: string, fallbackMs: number) =>
    parseInteger(`--${flag}`, text(flag, variable, String(fallbackMs / 1000)), 1, 3600) * 1000;
  const memory = text('script-memory', 'EDGE_INFER_SCRIPT_MEMORY', `${DEFAULT_SCRIPT_LIMITS.memoryMb}MiB`);
  const memoryMb = Math.floor(parseSize(memory) / 2 ** 20);
  if (memoryMb < 16) throw new EdgeInferError('EI_CONFIG_INVALID', [`--script-memory must be at least 16MiB, not "${memory}"`]);
  return {
    loadTimeoutMs: seconds('script-load-timeout', 'EDGE_INFER_SCRIPT_LOAD_TIMEOUT', DEFAULT_SCRIPT_LIMITS.loadTimeoutMs),
    runTimeoutMs: seconds('script-run-timeout', 'EDGE_INFER_SCRIPT_RUN_TIMEOUT', DEFAULT_SCRIPT_LIMITS.runTimeoutMs),
    memoryMb,
  };
}

/** `models/face-3.tar.gz?sv=...` → `face-3`. */
export function slotNameOf(uri: string): string {
  const path = uri.replace(/[?#].*$/, '').replace(/\/+$/, '');
  const base = path.slice(path.lastIndexOf('/') + 1);
  return base.replace(/\.(onnx|zip|tgz|tar\.gz|tar)$/i, '') || 'model';
}
