import * as ort from 'onnxruntime-node';
import { EdgeInferError, messageOf } from '../errors.js';
import type { EngineModel } from './target.js';
import type { Tensor, TensorSpec } from './tensor.js';

// Failures come back as exceptions with their message; ONNX Runtime's own log would also print, on stderr and
// outside ours, every provider library a GPU probe fails to find.
ort.env.logLevel = 'fatal';

export type ExecutionProvider = ort.InferenceSession.ExecutionProviderConfig;

export interface SessionSettings {
  /** In order of preference; the CPU when unset. */
  providers?: ExecutionProvider[];
  /** Intra-op threads; ONNX Runtime picks one per physical core when unset. */
  threads?: number;
  /**
   * Whether the intra-op threads spin-wait for the next run after each one (ONNX Runtime's own default) rather
   * than sleep. Off unless asked: on a small device the spinning takes the cores that decode the next image and
   * serve the next request, and at a camera's pace it burns tens of ms of a core per inference for nothing
   * (README, "Spin-waiting").
   */
  spinWait?: boolean;
}

/** How a target makes its sessions, whatever their providers: the slot's threads, the module's spin-wait. */
export type LocalSessionSettings = Omit<SessionSettings, 'providers'>;

/**
 * One ONNX session. `file` may be the model's bytes (the probes' tiny model); a named file is what errors and
 * entry scripts see.
 */
export async function loadOnnxModel(file: string | Uint8Array, settings: SessionSettings = {}): Promise<EngineModel> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: settings.providers ?? ['cpu'],
    graphOptimizationLevel: 'all',
    // Errors only: ONNX Runtime warns about harmless things (unused initializers) on stderr, outside our log.
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: settings.spinWait ? '1' : '0' } } },
  };
  if (settings.threads !== undefined) options.intraOpNumThreads = settings.threads;
  const label = typeof file === 'string' ? file : '(model in memory)';
  let session: ort.InferenceSession;
  try {
    session = typeof file === 'string' ? await ort.InferenceSession.create(file, options) : await ort.InferenceSession.create(file, options);
  } catch (error) {
    throw new EdgeInferError('EI_MODEL_LOAD_FAILED', [label, messageOf(error)], error);
  }
  const signature = {
    inputs: session.inputMetadata.map(toSpec),
    outputs: session.outputMetadata.map(toSpec),
  };
  return {
    file: label,
    signature,
    async run(feeds, outputNames) {
      // Wrapping shares the data; entry scripts may hand in plain {type, dims, data} objects.
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        ortFeeds[name] = t instanceof ort.Tensor ? t : new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
      }
      const results = outputNames ? await session.run(ortFeeds, outputNames) : await session.run(ortFeeds);
      return results as unknown as Record<string, Tensor>;
    },
    release: () => session.release(),
  };
}

function toSpec(metadata: ort.InferenceSession.ValueMetadata): TensorSpec {
  if (!metadata.isTensor) return { name: metadata.name, type: 'non-tensor', shape: [] };
  return { name: metadata.name, type: metadata.type, shape: [...metadata.shape] };
}

export const onnxRuntimeVersion: string = ort.env.versions.node ?? ort.env.versions.common;
