/**
 * Dynamic batching, as Triton's dynamic batcher does it, on the device: requests for one loaded version that
 * arrive within `maxDelayMicros` of each other are stacked along the first input dimension, run once, and
 * split back. It wraps the model a target loads, so every source (REST, OIP, edgeHub messages, camera frames,
 * an entry script's `ctx.model`) batches alike, and a batch never mixes versions: each loaded version has its
 * own batcher, and a request holds its version's lease while it waits here, so a swap drains batches as it
 * drains requests.
 *
 * - A request is checked against the model before it joins a batch: a bad one is refused alone.
 * - The oldest request waits at most the delay for company; a full batch (or a preferred size) runs at once.
 * - One batch runs at a time per version (a Triton instance); requests that arrive meanwhile form the next one.
 * - A run that fails fails the requests of that batch only.
 * - With `padBatches` (the default on the GPU), every batch is filled with zero rows up to maxBatch, and that one
 *   shape is warmed up at load: ONNX Runtime's CUDA provider, as onnxruntime-node sets it up, spends 0.6–1.2 s on
 *   any run whose input shape differs from the run before (measured on an H100, going back to a shape it had seen
 *   too), so a batcher that ran batches of varying sizes would stall on most of them.
 */
import { Type, type Static } from '@sinclair/typebox';
import { EdgeInferError, messageOf } from '../errors.js';
import { assembleFeeds, checkDtypeAndShape } from '../pipeline/feeds.js';
import { dtypeInfo } from './dtypes.js';
import type { EngineModel, Target } from './target.js';
import { elementCount, isFreeDimension, zeroFeeds, type Feeds, type ModelSignature, type Outputs, type Tensor, type TensorSpec } from './tensor.js';

const MAX_BATCH = 1024;

/**
 * A slot's `batching` field. `preferredBatchSizes` also takes one number or a comma-separated string, since IoT Hub
 * twins have refused arrays.
 */
export const BatchingSchema = Type.Object(
  {
    maxBatch: Type.Integer({ minimum: 1, maximum: MAX_BATCH }),
    maxDelayMicros: Type.Integer({ minimum: 0, maximum: 10_000_000 }),
    preferredBatchSizes: Type.Optional(
      Type.Union([
        Type.Integer({ minimum: 1, maximum: MAX_BATCH }),
        Type.String({ pattern: '^\\s*[0-9]+(\\s*,\\s*[0-9]+)*\\s*$' }),
        Type.Array(Type.Integer({ minimum: 1, maximum: MAX_BATCH }), { minItems: 1, maxItems: 32 }),
      ]),
    ),
    padBatches: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type BatchingSettings = Static<typeof BatchingSchema>;

/** The preferred sizes as numbers, largest first. */
function preferredSizes(settings: BatchingSettings): number[] {
  const given = settings.preferredBatchSizes;
  const list = given === undefined ? [] : typeof given === 'number' ? [given] : typeof given === 'string' ? given.split(',').map(Number) : given;
  return [...new Set(list)].sort((a, b) => b - a);
}

/** What the schema cannot say: a preferred size above `maxBatch`. As "/path: message", or undefined. */
export function batchingProblem(settings: BatchingSettings): string | undefined {
  const tooLarge = preferredSizes(settings).find((size) => size < 1 || size > settings.maxBatch);
  if (tooLarge === undefined) return undefined;
  return `/preferredBatchSizes: ${tooLarge} is not between 1 and maxBatch (${settings.maxBatch})`;
}

/** Told of every batch run: the slot, the requests' rows it stacked, and the zero rows it was padded with (metrics). */
export type BatchObserver = (slot: string, rows: number, padding: number) => void;

/** `target` with every model it loads batched; entry scripts' extra sessions (`createSession`) are not. */
export function batchingTarget(slot: string, target: Target, settings: BatchingSettings, onBatch: BatchObserver): Target {
  return {
    get running() {
      return target.running;
    },
    load: async (file) => {
      const model = await target.load(file);
      const problem = unbatchable(model.signature);
      if (problem) {
        await model.release();
        throw new EdgeInferError('EI_BATCHING_UNSUPPORTED', [slot, problem]);
      }
      const pad = settings.padBatches ?? target.running.target === 'gpu';
      if (pad) await warmPadded(slot, model, settings.maxBatch);
      return new BatchedModel(slot, model, settings, pad, onBatch);
    },
    createSession: (file) => target.createSession(file),
  };
}

/** Why a model cannot be batched: an input or output whose first dimension is fixed, or an input of no numeric type. */
function unbatchable(signature: ModelSignature): string | undefined {
  if (signature.inputs.length === 0) return 'it has no inputs';
  const fixedFirst = (spec: TensorSpec) => spec.shape.length === 0 || !isFreeDimension(spec.shape[0]!);
  const input = signature.inputs.find(fixedFirst);
  if (input) return `the first dimension of input "${input.name}" is ${JSON.stringify(input.shape[0] ?? 'absent')}, not free (shape ${JSON.stringify(input.shape)})`;
  const typeless = signature.inputs.find((i) => !dtypeInfo(i.type));
  if (typeless) return `input "${typeless.name}" is ${typeless.type}, which cannot be stacked`;
  // An output of unknown rank is checked when it comes back; one whose first dimension is fixed cannot be split.
  const output = signature.outputs.find((o) => o.shape.length > 0 && fixedFirst(o));
  if (output) return `the first dimension of output "${output.name}" is ${JSON.stringify(output.shape[0])}, not free`;
  return undefined;
}

/**
 * Runs one batch of `rows` zero rows, so that the provider's cost for that shape is paid before the version serves.
 * Only for a model whose inputs are fixed past the first dimension: for any other, the shape requests will bring
 * is unknown, and the first batch pays instead (README, "Dynamic batching").
 */
async function warmPadded(slot: string, model: EngineModel, rows: number): Promise<void> {
  if (model.signature.inputs.some((spec) => spec.shape.slice(1).some(isFreeDimension))) return;
  try {
    await model.run(zeroFeeds(model.signature, rows));
  } catch (error) {
    await model.release();
    throw new EdgeInferError('EI_WARMUP_FAILED', [slot, `a batch of ${rows} zero rows: ${messageOf(error)}`], error);
  }
}

interface Pending {
  readonly feeds: Feeds;
  readonly outputNames: readonly string[] | undefined;
  /** Requests with the same key stack: same inputs past the first dimension, same outputs asked for. */
  readonly key: string;
  readonly rows: number;
  /** performance.now() when it joined. */
  readonly arrived: number;
  resolve(outputs: Outputs): void;
  reject(error: unknown): void;
}

class BatchedModel implements EngineModel {
  readonly file: string;
  readonly signature: ModelSignature;
  readonly #slot: string;
  readonly #model: EngineModel;
  readonly #maxBatch: number;
  readonly #delayMs: number;
  readonly #preferred: number[];
  /** Whether batches are padded up to maxBatch rows rather than run at the size they have. */
  readonly #pad: boolean;
  readonly #onBatch: BatchObserver;
  #queue: Pending[] = [];
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  /** The request the timer waits for. */
  #timerFor: Pending | undefined;

  constructor(slot: string, model: EngineModel, settings: BatchingSettings, pad: boolean, onBatch: BatchObserver) {
    this.file = model.file;
    this.signature = model.signature;
    this.#slot = slot;
    this.#model = model;
    this.#maxBatch = settings.maxBatch;
    this.#delayMs = settings.maxDelayMicros / 1000;
    this.#preferred = preferredSizes(settings);
    this.#pad = pad;
    this.#onBatch = onBatch;
  }

  run(feeds: Feeds, outputNames?: readonly string[]): Promise<Outputs> {
    let pending: Omit<Pending, 'resolve' | 'reject'>;
    try {
      pending = this.#admit(feeds, outputNames);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ ...pending, resolve, reject });
      this.#pump();
    });
  }

  async release(): Promise<void> {
    clearTimeout(this.#timer);
    // Leases keep a version from being released while its requests wait, so this is empty unless a caller broke that.
    for (const pending of this.#queue.splice(0)) pending.reject(new EdgeInferError('EI_INFERENCE_FAILED', [this.#slot, 'the version was released']));
    await this.#model.release();
  }

  /** Checks a request as the model would, before it can spoil a batch; returns what the queue keeps of it. */
  #admit(feeds: Feeds, outputNames: readonly string[] | undefined): Omit<Pending, 'resolve' | 'reject'> {
    const inputs = Object.entries(feeds).map(([name, tensor]) => ({
      name,
      toTensor: (spec: TensorSpec): Tensor => {
        checkDtypeAndShape(spec, tensor.type, tensor.dims);
        if (tensor.data.length !== elementCount(tensor.dims)) {
          throw new EdgeInferError('EI_INPUT_SHAPE', [spec.name, JSON.stringify(tensor.dims), `${tensor.data.length} values`]);
        }
        return tensor;
      },
    }));
    assembleFeeds(this.#slot, this.signature, inputs);
    const names = this.signature.outputs.map((o) => o.name);
    const unknown = outputNames?.find((name) => !names.includes(name));
    if (unknown !== undefined) throw new EdgeInferError('EI_OUTPUT_NAME', [this.#slot, unknown, names.join(', ')]);
    const shapes = this.signature.inputs.map((spec) => feeds[spec.name]!.dims.slice(1).join('x'));
    const rows = feeds[this.signature.inputs[0]!.name]!.dims[0]!;
    const mismatched = this.signature.inputs.find((spec) => feeds[spec.name]!.dims[0] !== rows);
    if (mismatched) throw new EdgeInferError('EI_INPUT_SHAPE', [mismatched.name, `${rows} rows, as the other inputs have`, JSON.stringify(feeds[mismatched.name]!.dims)]);
    return { feeds, outputNames, key: `${shapes.join('|')}>${outputNames?.join('|') ?? '*'}`, rows, arrived: performance.now() };
  }

  /** Runs the next batch when it is due; otherwise makes sure a timer wakes the oldest request at its deadline. */
  #pump(): void {
    if (this.#running || this.#queue.length === 0) return;
    const head = this.#queue[0]!;
    const batch = this.#due(head);
    if (!batch) {
      if (this.#timerFor !== head) {
        clearTimeout(this.#timer);
        this.#timerFor = head;
        this.#timer = setTimeout(() => {
          this.#timerFor = undefined;
          this.#pump();
        }, Math.max(0, head.arrived + this.#delayMs - performance.now()));
      }
      return;
    }
    clearTimeout(this.#timer);
    this.#timerFor = undefined;
    void this.#execute(batch);
  }

  /**
   * The batch to run now, or undefined to wait: all that fits once the head waited its delay or the batch is
   * full; the largest preferred size that can be made exactly before that. A request of no rows, or of more
   * rows than `maxBatch`, runs by itself.
   */
  #due(head: Pending): Pending[] | undefined {
    if (head.rows === 0 || head.rows >= this.#maxBatch) return [head];
    const all = this.#gather(head, this.#maxBatch);
    const rows = sumRows(all);
    if (rows >= this.#maxBatch || performance.now() - head.arrived >= this.#delayMs) return all;
    for (const size of this.#preferred) {
      if (size > rows) continue;
      const preferred = this.#gather(head, size);
      if (sumRows(preferred) === size) return preferred;
    }
    return undefined;
  }

  /** The head and, in order of arrival, the requests that stack with it, up to `limit` rows. */
  #gather(head: Pending, limit: number): Pending[] {
    const batch = [head];
    let rows = head.rows;
    for (let i = 1; i < this.#queue.length && rows < limit; i++) {
      const next = this.#queue[i]!;
      if (next.key !== head.key || next.rows === 0 || rows + next.rows > limit) continue;
      batch.push(next);
      rows += next.rows;
    }
    return batch;
  }

  async #execute(batch: Pending[]): Promise<void> {
    this.#running = true;
    const taken = new Set(batch);
    this.#queue = this.#queue.filter((pending) => !taken.has(pending));
    const rows = sumRows(batch);
    // A request of more rows than maxBatch (or of none) runs at its own size.
    const runRows = this.#pad && rows > 0 && rows < this.#maxBatch ? this.#maxBatch : rows;
    try {
      this.#onBatch(this.#slot, rows, runRows - rows);
      // One request alone, at a size that needs no padding, runs as it came: no copy in, no split out.
      if (batch.length === 1 && runRows === rows) {
        batch[0]!.resolve(await this.#model.run(batch[0]!.feeds, batch[0]!.outputNames));
        return;
      }
      const outputs = await this.#model.run(stack(this.signature, batch, runRows), batch[0]!.outputNames);
      const parts = split(this.#slot, outputs, batch, runRows);
      batch.forEach((pending, i) => pending.resolve(parts[i]!));
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      this.#running = false;
      this.#pump();
    }
  }
}

function sumRows(batch: readonly Pending[]): number {
  let rows = 0;
  for (const pending of batch) rows += pending.rows;
  return rows;
}

/** One tensor per input of `rows` rows: the requests' rows one after another along the first dimension, then zeros. */
function stack(signature: ModelSignature, batch: readonly Pending[], rows: number): Feeds {
  const feeds: Feeds = {};
  for (const spec of signature.inputs) {
    const first = batch[0]!.feeds[spec.name]!;
    const dims = [rows, ...first.dims.slice(1)];
    const data = new (dtypeInfo(first.type)!.array)(elementCount(dims));
    let offset = 0;
    for (const pending of batch) {
      const part = pending.feeds[spec.name]!.data;
      // Same dtype, checked on admission: the arrays are of one kind.
      (data as Float32Array).set(part as Float32Array, offset);
      offset += part.length;
    }
    feeds[spec.name] = { type: first.type, dims, data };
  }
  return feeds;
}

/** Each request's rows of every output, as views of the batch's outputs (no copy); padding rows are left out. */
function split(slot: string, outputs: Outputs, batch: readonly Pending[], rows: number): Outputs[] {
  const parts: Outputs[] = batch.map(() => ({}));
  for (const [name, tensor] of Object.entries(outputs)) {
    if (tensor.dims[0] !== rows) {
      throw new EdgeInferError('EI_INFERENCE_FAILED', [slot, `output "${name}" came back with shape ${JSON.stringify(tensor.dims)} for a batch of ${rows} rows, so it cannot be split`]);
    }
    const perRow = rows === 0 ? 0 : tensor.data.length / rows;
    let row = 0;
    batch.forEach((pending, i) => {
      const data = tensor.data.subarray(row * perRow, (row + pending.rows) * perRow);
      parts[i]![name] = { type: tensor.type, dims: [pending.rows, ...tensor.dims.slice(1)], data };
      row += pending.rows;
    });
  }
  return parts;
}
