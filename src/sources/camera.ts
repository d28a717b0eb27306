/**
 * One camera: frames in, results out, and its state in the status store.
 *
 * connecting → streaming on the first frame; a fault (the source fails, ends, or sends nothing for the
 * timeout) → backoff, then connecting again after an exponential, capped wait. Scoring takes one frame at a
 * time and at most one waits: a newer frame replaces the waiting one (counted as dropped), so a slow model
 * scores fresh frames rather than a growing backlog of old ones.
 *
 * Frames come as pixels already fitted to the model's input when the model has an image plan, else as images.
 * When the frames no longer fit the model that scores them (another model, a version with another input size,
 * or the model was not loaded when the camera connected), the camera reconnects asking for frames that do.
 */
import type { Logger } from 'pino';
import type { Backoff } from '../backoff.js';
import { backoffDelay } from '../backoff.js';
import type { CameraSpec, OutputSettings } from '../config/desired-state.js';
import { EdgeInferError, isEdgeInferError, messageOf } from '../errors.js';
import type { NetworkSettings } from '../models/http-agent.js';
import type { ModelVersion, ScoreRequest } from '../engine/loaded-version.js';
import type { ModelRegistry } from '../models/registry.js';
import { frameSizeOf, sameFrameSize, type Frame, type FrameSize } from '../pipeline/frame.js';
import type { CameraState, CameraStatus, StatusStore } from '../status/store.js';
import { cameraAddress, type CameraAddress } from './camera-address.js';
import { openFrames, type FrameSource } from './frame-source.js';
import { applyMinScore } from './min-score.js';
import { resultMessage, type OutputMessage } from './result-message.js';

export type FrameOutcome = 'scored' | 'dropped' | 'failed' | 'unsent';

export interface CameraContext {
  registry: ModelRegistry;
  status: StatusStore;
  log: Logger;
  defaultModel(): string | undefined;
  output(): OutputSettings;
  /** Sends a result upstream; absent where there is no upstream (standalone mode). */
  publish?: (message: OutputMessage) => Promise<void>;
  network?: NetworkSettings;
  /** The ffmpeg that reads cameras: a path, or a name on PATH. */
  ffmpeg: string;
  /** Counts frames by what became of them (metrics). */
  onFrame?: (camera: string, outcome: FrameOutcome) => void;
  /** The wait after a fault: doubles from `firstMs` up to `mostMs`. */
  backoff: Backoff;
  /** How often `fps`, `lastFrameAt` and `dropped` are written to the status store while streaming. */
  statsIntervalMs: number;
}

/** The last frame scored, with what was found in it (`GET /cameras/{id}/snapshot`). */
export interface ScoredFrame {
  frame: Frame;
  result: unknown;
  model: string;
  version: string;
}

interface Arrival {
  frame: Frame;
  receivedAt: Date;
  started: number;
}

const DEFAULT_FPS = 1;
const DEFAULT_TIMEOUT_SECONDS = 10;

export class Camera {
  readonly id: string;
  readonly #context: CameraContext;
  readonly #address: CameraAddress;
  #spec: CameraSpec;
  #source: FrameSource | undefined;
  /** The frame size the source was opened for; undefined: images. */
  #openedSize: FrameSize | undefined;
  #state: CameraState = 'connecting';
  #error: CameraStatus['error'] = null;
  #stopped = false;
  #attempt = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #stallTimer: NodeJS.Timeout | undefined;
  #statsTimer: NodeJS.Timeout | undefined;
  #waiting: Arrival | undefined;
  #scoring = false;
  #dropped = 0;
  #scoredSinceStats = 0;
  #statsSince = performance.now();
  #lastFrameAt: string | null = null;
  #lastSentAt = 0;
  #latest: ScoredFrame | undefined;

  constructor(id: string, spec: CameraSpec, context: CameraContext) {
    this.id = id;
    this.#spec = spec;
    this.#context = context;
    this.#address = cameraAddress(spec.uri);
  }

  start(): void {
    if (this.#spec.enabled === false) return this.#report('disabled');
    this.#statsTimer = setInterval(() => this.#state === 'streaming' && this.#report('streaming'), this.#context.statsIntervalMs);
    this.#open();
  }

  /** Takes a spec that differs only in what a running camera can change at once (model, minScore). */
  update(spec: CameraSpec): void {
    this.#spec = spec;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#stallTimer);
    clearInterval(this.#statsTimer);
    this.#source?.close();
    this.#waiting = undefined;
  }

  /** Failed for good (no ffmpeg): only starting it again can help. */
  get failed(): boolean {
    return this.#state === 'failed';
  }

  latest(): ScoredFrame | undefined {
    return this.#latest;
  }

  get #timeoutMs(): number {
    return (this.#spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
  }

  get #modelName(): string | undefined {
    return this.#spec.model ?? this.#context.defaultModel();
  }

  #open(): void {
    if (this.#stopped) return;
    this.#report('connecting');
    this.#context.log.info({ camera: this.id, uri: this.#address.shown }, 'camera connecting');
    const name = this.#modelName;
    const plan = name ? this.#context.registry.active(name)?.imagePlan : undefined;
    this.#openedSize = plan && frameSizeOf(plan);
    const options = {
      ffmpeg: this.#context.ffmpeg,
      fps: this.#spec.fps ?? DEFAULT_FPS,
      timeoutMs: this.#timeoutMs,
      size: this.#openedSize,
      ...(this.#context.network ? { network: this.#context.network } : {}),
    };
    this.#source = openFrames(this.#address, options, {
      frame: (frame) => this.#onFrame(frame),
      fault: (error) => this.#fault(error),
    });
    this.#stallTimer = setTimeout(() => this.#fault(new EdgeInferError('EI_CAMERA_STALLED', [this.#address.shown, this.#timeoutMs / 1000])), this.#timeoutMs);
  }

  /** Reconnects for frames that fit the model now serving the camera; not a fault, so no backoff. */
  #refit(): void {
    this.#context.log.info({ camera: this.id, model: this.#modelName }, 'camera reconnecting for frames that fit its model');
    clearTimeout(this.#stallTimer);
    this.#source?.close();
    this.#waiting = undefined;
    this.#open();
  }

  #onFrame(frame: Frame): void {
    if (this.#stopped) return;
    this.#stallTimer?.refresh();
    this.#lastFrameAt = new Date().toISOString();
    if (this.#state !== 'streaming') {
      this.#attempt = 0;
      this.#error = null;
      this.#context.log.info({ camera: this.id }, 'camera streaming');
      this.#report('streaming');
    }
    if (this.#waiting) this.#drop();
    this.#waiting = { frame, receivedAt: new Date(), started: performance.now() };
    void this.#pump();
  }

  async #pump(): Promise<void> {
    if (this.#scoring) return;
    this.#scoring = true;
    while (this.#waiting && !this.#stopped) {
      const frame = this.#waiting;
      this.#waiting = undefined;
      await this.#score(frame);
    }
    this.#scoring = false;
  }

  async #score(arrival: Arrival): Promise<void> {
    const name = this.#modelName;
    try {
      const scored = await this.#context.registry.use('camera', name, undefined, async (model) => {
        const request = requestFor(arrival.frame, model);
        return request && { result: await model.score(request), model };
      });
      if (!scored) return this.#refit();
      const { result, model } = scored;
      this.#scoredSinceStats++;
      this.#context.onFrame?.(this.id, 'scored');
      if (this.#error && this.#state === 'streaming') {
        this.#error = null;
        this.#report('streaming');
      }
      const output = this.#context.output();
      const minScore = this.#spec.minScore ?? output.minScore;
      const kept = minScore === undefined ? { result, found: true } : applyMinScore(result, minScore);
      this.#latest = { frame: arrival.frame, result: kept.result, model: model.name, version: model.version };
      const heartbeatDue = output.heartbeatSeconds !== undefined && performance.now() - this.#lastSentAt >= output.heartbeatSeconds * 1000;
      if (kept.found || heartbeatDue) this.#send(arrival, model, kept.result, output.name ?? 'results');
      // Images while the model takes pixels: it was not loaded when the camera connected. Pixels are cheaper.
      if (arrival.frame.kind === 'image' && model.imagePlan && !this.#openedSize) this.#refit();
    } catch (error) {
      const code = isEdgeInferError(error) ? error.code : 'EI_INTERNAL';
      // Refused at the model's admission bound: other sources hold the model; the next frame tries again.
      if (code === 'EI_OVERLOADED') return this.#drop();
      this.#context.onFrame?.(this.id, 'failed');
      // Said once per kind of failure, not once per frame.
      if (this.#error?.code !== code) {
        this.#context.log.warn({ camera: this.id, model: name, code, err: messageOf(error) }, 'a camera frame could not be scored');
        this.#error = { code, message: messageOf(error) };
        if (this.#state === 'streaming') this.#report('streaming');
      }
    }
  }

  #drop(): void {
    this.#dropped++;
    this.#context.onFrame?.(this.id, 'dropped');
  }

  #send(arrival: Arrival, model: { name: string; version: string }, result: unknown, output: string): void {
    const publish = this.#context.publish;
    // A frame that was being scored when the camera was removed or restarted is not sent.
    if (!publish || this.#stopped) return;
    this.#lastSentAt = performance.now();
    const message = resultMessage({
      output,
      model,
      source: { type: 'camera', id: this.id },
      receivedAt: arrival.receivedAt,
      latencyMs: performance.now() - arrival.started,
      result,
    });
    // Not awaited: the next frame is scored while this one travels. A frame that cannot be sent is live data
    // whose moment has passed, so it is counted, not kept.
    publish(message).catch((error: unknown) => {
      this.#context.onFrame?.(this.id, 'unsent');
      this.#context.log.debug({ camera: this.id, err: messageOf(error) }, 'a camera result was not sent');
    });
  }

  #fault(error: EdgeInferError): void {
    if (this.#stopped || this.#state === 'backoff' || this.#state === 'failed') return;
    clearTimeout(this.#stallTimer);
    this.#source?.close();
    this.#source = undefined;
    this.#waiting = undefined;
    this.#error = { code: error.code, message: error.message };
    // A missing ffmpeg does not come back by retrying: failed until the desired state changes.
    if (error.code === 'EI_FFMPEG_NOT_FOUND') {
      this.#context.log.error({ camera: this.id, code: error.code }, error.message);
      return this.#report('failed');
    }
    const wait = backoffDelay(this.#attempt++, this.#context.backoff);
    this.#context.log.warn({ camera: this.id, code: error.code, err: error.message, retryInMs: wait }, 'camera fault');
    this.#report('backoff');
    this.#retryTimer = setTimeout(() => this.#open(), wait);
  }

  /** Writes the camera's state, with its counters as they are now; a stopped camera no longer has any. */
  #report(state: CameraState): void {
    if (this.#stopped) return;
    this.#state = state;
    const now = performance.now();
    const seconds = (now - this.#statsSince) / 1000;
    const fps = seconds > 0 ? Math.round((this.#scoredSinceStats / seconds) * 100) / 100 : 0;
    this.#scoredSinceStats = 0;
    this.#statsSince = now;
    this.#context.status.updateCamera(this.id, { status: state, fps: state === 'streaming' ? fps : 0, lastFrameAt: this.#lastFrameAt, dropped: this.#dropped, error: this.#error });
  }
}

/** The request that scores `frame` on `model`; undefined when the frame's pixels do not fit the model's input. */
function requestFor(frame: Frame, model: ModelVersion): ScoreRequest | undefined {
  if (frame.kind === 'image') return { kind: 'image', image: frame.image, contentType: frame.contentType };
  const size = model.imagePlan && frameSizeOf(model.imagePlan);
  return sameFrameSize(frame.size, size) ? { kind: 'pixels', pixels: frame.pixels, geometry: frame.geometry } : undefined;
}
