import * as ort from 'onnxruntime-node';
import { EdgeInferError, messageOf } from '../errors.js';
import type { Feeds, ModelSignature, Outputs, Tensor, TensorSpec } from './tensor.js';

/** Where a local ONNX model runs. (The remote `fpga` target speaks OIP and is not an ONNX session.) */
export type LocalTarget = 'cpu' | 'gpu';

export interface SessionSettings {
  target: LocalTarget;
  /** Intra-op threads; ONNX Runtime picks one per physical core when unset. */
  threads?: number;
}

/** One ONNX model loaded on one target: the narrow lifecycle load → run → release. */
export interface OnnxModel {
  readonly file: string;
  readonly signature: ModelSignature;
  run(feeds: Feeds, outputNames?: readonly string[]): Promise<Outputs>;
  release(): Promise<void>;
}

const EXECUTION_PROVIDERS: Record<LocalTarget, string[]> = {
  cpu: ['cpu'],
  gpu: ['cuda', 'cpu'],
};

export async function loadOnnxModel(file: string, settings: SessionSettings): Promise<OnnxModel> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: EXECUTION_PROVIDERS[settings.target],
    graphOptimizationLevel: 'all',
    // Errors only: ONNX Runtime warns about harmless things (unused initializers) on stderr, outside our log.
    logSeverityLevel: 3,
  };
  if (settings.threads !== undefined) options.intraOpNumThreads = settings.threads;
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file, options);
  } catch (error) {
    throw new EdgeInferError('EI_MODEL_LOAD_FAILED', [file, messageOf(error)], error);
  }
  const signature = {
    inputs: session.inputMetadata.map(toSpec),
    outputs: session.outputMetadata.map(toSpec),
  };
  return {
    file,
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
