/**
 * One loaded version of a model: its model on the target the engine placed it on, its image plan,
 * postprocessor and entry script, put together once so that a request only runs them. Which target runs it
 * is the `Target`'s business: the pipeline around it is the same on every one.
 * Lifecycle (Triton's backend habit): load → warm up → score/infer → release.
 */
import type { Logger } from 'pino';
import { EdgeInferError, isEdgeInferError, messageOf } from '../errors.js';
import type { ModelSettings } from '../models/manifest.js';
import { decodeImage, fits, identityGeometry, imageToTensor, inputArray, pixelsToTensor, planImageInput, type DecodedImage, type ImageGeometry, type ImagePlan } from '../pipeline/image.js';
import { feedsFromScoreBody } from '../pipeline/json-tensors.js';
import { createPostprocessor } from '../pipeline/postprocess/index.js';
import { loadEntryScript, type EntryScript, type ScriptLimits } from './entry-script.js';
import { ReusedArrays } from './reused-arrays.js';
import { runPostprocessor } from './script-worker-postprocess.js';
import type { Target, TargetName } from './target.js';
import { runtimeReason } from './runtime-reason.js';
import { checkInputs, checkOutputs, resolveTensorLimits } from './tensor-limits.js';
import { isFreeDimension, zeroFeeds, type Feeds, type ModelSignature, type Outputs } from './tensor.js';

export { zeroFeeds } from './tensor.js';

/**
 * A request to score, as any source hands it over. `pixels` is RGB already at the image plan's size (camera
 * frames resized by ffmpeg), with the geometry back to the picture as taken.
 */
export type ScoreRequest =
  | { kind: 'json'; body: unknown }
  | { kind: 'image'; image: Buffer; contentType: string }
  | { kind: 'pixels'; pixels: Uint8Array; geometry: ImageGeometry };

export interface ModelVersion {
  readonly name: string;
  readonly version: string;
  readonly sha256: string | undefined;
  /** Where it runs now (a remote version may run on the CPU while its accelerator is down). */
  readonly target: TargetName;
  /** The ONNX model's inputs and outputs; empty for an entry script that loads no model of its own. */
  readonly signature: ModelSignature;
  readonly settings: ModelSettings;
  /** How images become the input tensor; undefined for an entry script, or a model that takes no images. */
  readonly imagePlan: ImagePlan | undefined;
  /**
   * The whole work: preprocessing, inference, postprocessing (or the entry script). `decoded`: an image request
   * already decoded while it waited for its turn (models/score.ts); used when it fits this version's image plan.
   */
  score(request: ScoreRequest, decoded?: DecodedImage): Promise<unknown>;
  /** The model alone, tensors in and out (the Open Inference Protocol path). */
  infer(feeds: Feeds, outputNames?: readonly string[]): Promise<Outputs>;
  release(): Promise<void>;
}

/** What a version is made of on disk (a model package, read by models/). */
export interface VersionFiles {
  dir: string;
  modelFile?: string;
  scriptFile?: string;
  settings: ModelSettings;
}

export interface LoadOptions {
  name: string;
  version: string;
  sha256?: string;
  pkg: VersionFiles;
  /** Where the engine placed the version (Engine.place). */
  target: Target;
  log: Logger;
  /** Deadlines and heap of an entry script's worker (entry-script.ts has the defaults). */
  scriptLimits?: ScriptLimits;
  /** The request body limit (--max-body): the default bounds on inputs and responses derive from it. */
  maxBody?: number;
}

/** Idle input arrays a version keeps for image requests: about as many as run or wait decoded at once. */
const INPUT_ARRAYS_KEPT = 4;

export async function loadModelVersion(options: LoadOptions): Promise<ModelVersion> {
  const { name, pkg, target } = options;
  const settings = pkg.settings;
  const model = pkg.modelFile ? await target.load(pkg.modelFile) : undefined;
  let script: EntryScript | undefined;
  try {
    const signature: ModelSignature = model?.signature ?? { inputs: [], outputs: [] };
    // An image plan is worked out once; when the model cannot take images, image requests get the reason.
    let imagePlan: ImagePlan | undefined;
    let notImage: unknown;
    try {
      if (signature.inputs.length !== 1) {
        throw new EdgeInferError('EI_INPUT_NOT_IMAGE', [name, `it has ${signature.inputs.length} inputs, not one`]);
      }
      imagePlan = planImageInput(name, signature.inputs[0]!, settings.image);
    } catch (error) {
      notImage = error;
    }
    const inputSize = imagePlan && { width: imagePlan.width, height: imagePlan.height };
    const limits = model && (await resolveTensorLimits(model, settings.limits, options.maxBody));
    const postprocessor = model ? await createPostprocessor(settings.postprocess, { modelName: name, signature, packageDir: pkg.dir, inputSize }) : undefined;

    const infer = async (feeds: Feeds, outputNames?: readonly string[]): Promise<Outputs> => {
      if (!model || !limits) throw new EdgeInferError('EI_INPUT_NOT_IMAGE', [name, 'its entry script loads no model of its own']);
      // Every source's tensors meet the model here, after decoding: one check for all of them.
      checkInputs(name, signature, feeds, limits);
      try {
        const outputs = await model.run(feeds, outputNames);
        checkOutputs(name, outputs, limits);
        return outputs;
      } catch (error) {
        // The accelerator's own codes say more than a generic failure.
        if (isEdgeInferError(error)) throw error;
        throw new EdgeInferError('EI_INFERENCE_FAILED', [name, runtimeReason(error)], error);
      }
    };
    const inputArrays = imagePlan && new ReusedArrays(() => inputArray(imagePlan!), INPUT_ARRAYS_KEPT);
    const scorePixels = async (pixels: Uint8Array, geometry: ImageGeometry, plan: ImagePlan): Promise<unknown> => {
      const tensor = pixelsToTensor(pixels, plan, inputArrays!.take());
      const result = await runPostprocessor(postprocessor!, name, await infer({ [plan.input]: tensor }), geometry);
      // The run is over and nothing kept its input (a batch stacked a copy, a remote call has sent it, the outputs
      // are arrays of their own). A failed run's array is left to the collector: a remote call that timed out may
      // still hold it.
      inputArrays!.give(tensor.data as Uint8Array | Float32Array);
      return result;
    };
    const builtIn = async (request: ScoreRequest, decoded?: DecodedImage): Promise<unknown> => {
      if (request.kind !== 'json' && !imagePlan) throw notImage;
      if (request.kind === 'pixels') return scorePixels(request.pixels, request.geometry, imagePlan!);
      if (request.kind === 'image') {
        // Decoded ahead for the version that was active then; a swap since may have brought another size.
        const image = decoded && fits(decoded, imagePlan!) ? decoded : await decodeImage(request.image, imagePlan!);
        return scorePixels(image.pixels, image.geometry, imagePlan!);
      }
      const feeds = feedsFromScoreBody(name, signature, request.body);
      const geometry = identityGeometry(imagePlan?.width ?? 0, imagePlan?.height ?? 0);
      return runPostprocessor(postprocessor!, name, await infer(feeds), geometry);
    };

    if (pkg.scriptFile) {
      // The script runs in a worker of its own; what its ctx calls (the model, sessions on this target, the
      // manifest's image preprocessing) stays here, with the version; the worker builds its own postprocessor.
      script = await loadEntryScript({
        modelName: name,
        version: options.version,
        file: pkg.scriptFile,
        dir: pkg.dir,
        settings,
        ...(options.scriptLimits ? { limits: options.scriptLimits } : {}),
        log: options.log.child({ model: name, version: options.version }),
        services: {
          ...(model ? { model } : {}),
          createSession: (file: string) => target.createSession(file),
          imageToTensor: async (image: Buffer) => {
            if (!imagePlan) throw notImage;
            return { [imagePlan.input]: (await imageToTensor(image, imagePlan)).tensor };
          },
        },
        ...(postprocessor ? { postprocessor: { ...(inputSize ? { inputSize } : {}), geometry: identityGeometry(0, 0) } } : {}),
      });
    }
    const scripted = async (request: ScoreRequest): Promise<unknown> => {
      if (request.kind === 'pixels') throw new EdgeInferError('EI_INPUT_NOT_IMAGE', [name, 'its entry script takes encoded images, not pixels']);
      return script!.run(request);
    };

    const version: ModelVersion = {
      name,
      version: options.version,
      sha256: options.sha256,
      get target() {
        return target.running.target;
      },
      signature,
      settings,
      imagePlan: script ? undefined : imagePlan,
      score: script ? scripted : builtIn,
      infer,
      release: async () => {
        await script?.stop();
        await model?.release();
      },
    };
    await warmUp(version, options.log);
    return version;
  } catch (error) {
    await script?.stop();
    await model?.release();
    throw error;
  }
}

const SCRIPT_WORKER_ENDED: ReadonlySet<string> = new Set(['EI_SCRIPT_TIMEOUT', 'EI_SCRIPT_CRASHED', 'EI_SCRIPT_OUT_OF_MEMORY']);

/**
 * One inference before the version takes requests, so that the first caller does not pay for lazy
 * allocations. The package's input sample is used when it has one; otherwise zeros of the input shapes.
 */
async function warmUp(version: ModelVersion, log: Logger): Promise<void> {
  const sample = version.settings.inputSample;
  try {
    if (sample !== undefined) {
      await version.score({ kind: 'json', body: sample });
      return;
    }
    if (version.signature.inputs.length === 0) return;
    await version.infer(zeroFeeds(version.signature));
  } catch (error) {
    if (sample === undefined && version.signature.inputs.some((i) => i.shape.some(isFreeDimension))) {
      // Zeros of guessed sizes may not fit a model with free dimensions; that says nothing about real requests.
      log.warn({ model: version.name, err: messageOf(error) }, 'warm-up with zeros did not run; add an inputSample to the package to warm it up');
      return;
    }
    // An entry script's worker that ended says more in its own code than a warm-up failure would.
    if (isEdgeInferError(error) && SCRIPT_WORKER_ENDED.has(error.code)) throw error;
    if (isEdgeInferError(error) && error.code === 'EI_WARMUP_FAILED') throw error;
    throw new EdgeInferError('EI_WARMUP_FAILED', [version.name, messageOf(error)], error);
  }
}
