/**
 * The cameras the desired state names, kept in step with it: a camera that is added starts, one removed
 * stops, one whose source changed (uri, fps, timeout, enabled) or that failed restarts, and one whose model or
 * minScore changed goes on with the new setting from its next frame. Each camera fails alone.
 */
import { checkCamera, type OutputSettings } from '../config/desired-state.js';
import { EdgeInferError, messageOf } from '../errors.js';
import { Camera, type CameraContext } from './camera.js';

export type CameraManagerContext = Omit<CameraContext, 'output'>;

export class CameraManager {
  readonly #context: CameraContext;
  readonly #cameras = new Map<string, { camera: Camera; sourceKey: string }>();
  /** Ids whose desired spec was refused: not running, but listed in the status until the desired state drops them. */
  readonly #refused = new Set<string>();
  #output: OutputSettings = {};

  constructor(context: CameraManagerContext) {
    this.#context = { ...context, output: () => this.#output };
  }

  apply(cameras: Record<string, unknown>, output: OutputSettings): void {
    this.#output = output;
    // Own keys only: `in` would find "toString" or "__proto__" on every object, and such an id would never leave.
    for (const id of [...this.#cameras.keys(), ...this.#refused]) {
      if (!Object.hasOwn(cameras, id)) {
        this.#stop(id);
        this.#refused.delete(id);
        this.#context.status.removeCamera(id);
      }
    }
    for (const [id, given] of Object.entries(cameras)) this.#applyOne(id, given);
  }

  camera(id: string): Camera | undefined {
    return this.#cameras.get(id)?.camera;
  }

  ids(): string[] {
    return [...this.#cameras.keys()];
  }

  stop(): void {
    for (const id of [...this.#cameras.keys()]) this.#stop(id);
  }

  #applyOne(id: string, given: unknown): void {
    const spec = checkCamera(id, given);
    if (typeof spec === 'string') return this.#refuse(id, spec);
    this.#refused.delete(id);
    const sourceKey = JSON.stringify([spec.uri, spec.fps, spec.timeoutSeconds, spec.enabled]);
    const running = this.#cameras.get(id);
    // A failed camera starts again with the desired state, changed or not: ffmpeg may be installed by now.
    if (running?.sourceKey === sourceKey && !running.camera.failed) return running.camera.update(spec);
    this.#stop(id);
    let camera: Camera;
    try {
      camera = new Camera(id, spec, this.#context);
    } catch (error) {
      return this.#refuse(id, `/cameras/${id}/uri: ${messageOf(error)}`);
    }
    this.#cameras.set(id, { camera, sourceKey });
    camera.start();
  }

  /** A camera whose desired spec cannot be used stops, and its status says what to fix. */
  #refuse(id: string, problem: string): void {
    this.#stop(id);
    this.#refused.add(id);
    const error = new EdgeInferError('EI_DESIRED_INVALID', [problem]);
    this.#context.log.error({ camera: id, code: error.code }, error.message);
    this.#context.status.updateCamera(id, { status: 'failed', fps: 0, error: { code: error.code, message: error.message } });
  }

  #stop(id: string): void {
    this.#cameras.get(id)?.camera.stop();
    this.#cameras.delete(id);
  }
}

