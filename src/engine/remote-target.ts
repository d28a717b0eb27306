/**
 * The `fpga` target: a model served by an accelerator's inference server (AMD Inference Server with Vitis AI,
 * Triton with a vendor backend, OpenVINO Model Server) over the Open Inference Protocol. The package's ONNX
 * model stays the reference: its signature is checked against the server's metadata, and with `fallback: cpu`
 * it runs locally while the circuit breaker is open. Pre- and postprocessing never leave the device.
 */
import { EdgeInferError, isEdgeInferError, messageOf } from '../errors.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { jsonOf, OipClient } from './oip-client.js';
import { decodeRemoteResponse, encodeRemoteRequest, HEADER_LENGTH } from './oip-wire.js';
import { loadOnnxModel, type LocalSessionSettings } from './onnx-session.js';
import { describeSignature, signatureMismatch, type RemoteMetadata } from './remote-signature.js';
import { available, unavailable, type AcceleratorSettings, type EngineModel, type Placement, type Running, type Target, type TargetProbe } from './target.js';
import type { ModelSignature } from './tensor.js';

export interface RemoteTargetOptions {
  slot: string;
  placement: Placement & { accelerator: AcceleratorSettings };
  /** The local sessions' settings (the package's model while the breaker is open, an entry script's other models). */
  session: LocalSessionSettings;
  /** Where the model runs now changed (the breaker opened or closed). */
  onRunning: (running: Running) => void;
  /** What the server said about itself, for `runtime.targets.fpga`. */
  onProbe: (probe: TargetProbe) => void;
}

const DEFAULT_BREAKER_FAILURES = 3;
const DEFAULT_BREAKER_RESET_MS = 5000;

interface ServerInfo {
  name?: string;
  version?: string;
  extensions?: string[];
}

export function remoteTarget(options: RemoteTargetOptions): Target {
  const local = (file: string) => loadOnnxModel(file, { ...options.session, providers: ['cpu'] });
  const target = {
    running: { target: 'fpga', reason: null } as Running,
    load: (file: string) => loadRemoteModel(file, options, local, (running) => {
      target.running = running;
      options.onRunning(running);
    }),
    // The server holds only the named model: an entry script's other models run on this device's CPU.
    createSession: local,
  };
  return target;
}

async function loadRemoteModel(file: string, options: RemoteTargetOptions, local: (file: string) => Promise<EngineModel>, onRunning: (running: Running) => void): Promise<EngineModel> {
  const { accelerator, fallback = 'cpu' } = options.placement;
  const reference = await local(file);
  const signature = reference.signature;
  // The local session is kept only to stand in for the server; otherwise its signature was all it was for.
  const standIn = fallback === 'cpu' ? reference : undefined;
  if (!standIn) await reference.release();
  let client: OipClient | undefined;
  try {
    client = await OipClient.create(accelerator);
    const server = new RemoteServer(client, options, signature);
    const breaker = new CircuitBreaker({
      failures: accelerator.breakerFailures ?? DEFAULT_BREAKER_FAILURES,
      resetMs: accelerator.breakerResetMs ?? DEFAULT_BREAKER_RESET_MS,
      trial: () => server.connect(false),
      onChange: (state, reason) => {
        if (state === 'closed') onRunning({ target: 'fpga', reason: null });
        else onRunning({ target: standIn ? 'cpu' : 'fpga', reason: `the accelerator at ${server.where} cannot be used (${reason})${standIn ? '; running on the CPU until it answers' : ''}` });
      },
    });
    try {
      await server.connect(true);
    } catch (error) {
      // A server that answers but holds another model, or refuses the load, is a wrong deployment: no fallback.
      if (!standIn || !isEdgeInferError(error) || error.code !== 'EI_ACCELERATOR_UNAVAILABLE') throw error;
      breaker.open(messageOf(error));
    }
    const outputNames = signature.outputs.map((o) => o.name);
    return {
      file,
      signature,
      async run(feeds, names) {
        if (breaker.closed) {
          try {
            const outputs = await server.infer(feeds, names ?? outputNames);
            breaker.succeeded();
            return outputs;
          } catch (error) {
            if (!isEdgeInferError(error) || error.code !== 'EI_ACCELERATOR_UNAVAILABLE') throw error;
            breaker.failed(messageOf(error));
            if (!standIn) throw error;
          }
        }
        if (!standIn) throw new EdgeInferError('EI_ACCELERATOR_UNAVAILABLE', [server.where, 'its circuit breaker is open after failures in a row; it is tried again by itself']);
        return standIn.run(feeds, names);
      },
      async release() {
        breaker.stop();
        client!.close();
        await standIn?.release();
      },
    };
  } catch (error) {
    client?.close();
    await standIn?.release();
    throw error;
  }
}

/** One model on one server: how to reach it, and what the server said it can do. */
class RemoteServer {
  readonly where: string;
  readonly #client: OipClient;
  readonly #options: RemoteTargetOptions;
  readonly #signature: ModelSignature;
  readonly #modelPath: string;
  readonly #model: string;
  #binary = false;

  constructor(client: OipClient, options: RemoteTargetOptions, signature: ModelSignature) {
    const { accelerator } = options.placement;
    this.#client = client;
    this.#options = options;
    this.#signature = signature;
    this.#model = accelerator.model ?? options.slot;
    this.#modelPath = `v2/models/${encodeURIComponent(this.#model)}${accelerator.modelVersion ? `/versions/${encodeURIComponent(accelerator.modelVersion)}` : ''}`;
    this.where = client.where;
  }

  /**
   * Server metadata (which wire format), the model loaded where the repository extension is offered (always on
   * a new deploy, so that a version change reaches the server; on a trial only when the model is not ready),
   * readiness, and the model's metadata checked against the package's.
   */
  async connect(deploying: boolean): Promise<void> {
    let info: ServerInfo;
    try {
      info = jsonOf<ServerInfo>(await this.#client.get('v2'), this.where, 'GET /v2');
    } catch (error) {
      this.#options.onProbe(unavailable(`${this.where}: ${messageOf(error)}`));
      throw error;
    }
    const extensions = info.extensions ?? [];
    this.#binary = extensions.includes('binary_tensor_data');
    this.#options.onProbe(available({ url: this.where, server: info.name ?? 'unknown', version: info.version ?? 'unknown', extensions: extensions.join(', ') }));
    const repository = extensions.some((e) => e.startsWith('model_repository'));
    if (repository && (deploying || !(await this.#ready()))) await this.#load();
    if (!(await this.#ready())) throw new EdgeInferError('EI_ACCELERATOR_UNAVAILABLE', [this.where, `model "${this.#model}" is not ready there`]);
    const metadata = jsonOf<RemoteMetadata>(await this.#client.get(this.#modelPath), this.where, `GET /${this.#modelPath}`);
    const mismatch = signatureMismatch(this.#signature, metadata);
    if (mismatch) throw new EdgeInferError('EI_ACCELERATOR_MISMATCH', [this.#model, this.where, mismatch, describeSignature(metadata), describeSignature(this.#signature)]);
  }

  async infer(feeds: Parameters<EngineModel['run']>[0], outputNames: readonly string[]): Promise<ReturnType<typeof decodeRemoteResponse>> {
    const request = encodeRemoteRequest(feeds, outputNames, this.#binary);
    const response = await this.#client.post(`${this.#modelPath}/infer`, request.body, request.headers);
    if (response.status !== 200) jsonOf(response, this.where, 'inference');
    const headerLength = response.headers[HEADER_LENGTH];
    return decodeRemoteResponse(response.body, headerLength === undefined ? undefined : Number(headerLength), this.where);
  }

  async #ready(): Promise<boolean> {
    const response = await this.#client.get(`${this.#modelPath}/ready`);
    if (response.status >= 500) jsonOf(response, this.where, 'readiness');
    return response.status === 200;
  }

  async #load(): Promise<void> {
    const { parameters } = this.#options.placement.accelerator;
    const body = [Buffer.from(JSON.stringify(parameters ? { parameters } : {}))];
    const response = await this.#client.post(`v2/repository/models/${encodeURIComponent(this.#model)}/load`, body, { 'content-type': 'application/json' });
    if (response.status !== 200) jsonOf(response, this.where, 'the repository load');
  }
}
