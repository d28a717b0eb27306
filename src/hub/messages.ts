/**
 * edgeHub input `score` → output `results` (or `errors`), contract section 6. Each message is completed only
 * after its answer was sent. Over MQTT that is not what keeps it safe: the SDK acknowledges a message when it
 * arrives, so edgeHub never delivers it again; an answer that cannot be sent waits in the outbox (outbox.ts)
 * until a session is back, and the message is completed then.
 *
 * Back-pressure is the model's admission (models/admission.ts), the same as for REST and cameras: past its
 * bound a message is answered on `errors` with EI_OVERLOADED (and counted) rather than queued without bound.
 */
import type { Logger } from 'pino';
import { EdgeInferError, isEdgeInferError, messageOf } from '../errors.js';
import type { ScoreRequest } from '../engine/loaded-version.js';
import type { ModelRegistry } from '../models/registry.js';
import { scoreOn } from '../models/score.js';
import { imageContentType } from '../pipeline/image.js';
import { resultMessage, type OutputMessage } from '../sources/result-message.js';

/** What the scorer needs of an SDK message. */
export interface InputMessage {
  data: Buffer;
  messageId?: string;
  correlationId?: string;
  contentType?: string;
  properties: { getValue(key: string): string | undefined };
}

export interface InputScorerOptions {
  registry: ModelRegistry;
  defaultModel: () => string | undefined;
  outputName: () => string;
  send: (message: OutputMessage) => Promise<void>;
  complete: (message: InputMessage) => Promise<void>;
  log: Logger;
  onAnswered?: (output: 'results' | 'errors', code?: string) => void;
}

export class InputScorer {
  readonly #options: InputScorerOptions;
  /** Messages taken and not answered yet (admitted, waiting for admission, or being answered). */
  #running = 0;
  #idle: Array<() => void> = [];
  #accepting = true;

  constructor(options: InputScorerOptions) {
    this.#options = options;
  }

  /** Takes one input message; other inputs than `score` are completed and ignored. */
  take(input: string, message: InputMessage): void {
    if (input !== 'score') {
      this.#options.log.warn({ input }, 'a message on an input this module does not read was dropped');
      void this.#options.complete(message).catch(() => undefined);
      return;
    }
    // Shutting down: left uncompleted, so edgeHub delivers it again after the restart.
    if (!this.#accepting) return;
    this.#running++;
    this.#options.log.debug({ messageId: message.messageId, running: this.#running }, 'input message accepted');
    void this.#score(message).finally(() => {
      this.#running--;
      if (this.#running === 0) for (const wake of this.#idle.splice(0)) wake();
    });
  }

  /** Stops taking messages and resolves when those accepted are answered. */
  async drain(): Promise<void> {
    this.#accepting = false;
    while (this.#running > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  async #score(message: InputMessage): Promise<void> {
    const started = performance.now();
    const name = message.properties.getValue('model') ?? this.#options.defaultModel();
    try {
      const { result, model } = await scoreOn(this.#options.registry, 'message', name, toRequest(message));
      await this.#answer(message, started, { name: model.name, version: model.version }, undefined, result);
    } catch (error) {
      await this.#answer(message, started, name ? { name, version: this.#options.registry.active(name)?.version } : undefined, error);
    }
  }

  async #answer(message: InputMessage, started: number, model: { name: string; version?: string } | undefined, error?: unknown, result?: unknown): Promise<void> {
    const failed = error !== undefined;
    const code = failed ? (isEdgeInferError(error) ? error.code : 'EI_INTERNAL') : undefined;
    const answer = resultMessage({
      output: failed ? 'errors' : this.#options.outputName(),
      model,
      source: { type: 'message', id: message.messageId ?? null },
      receivedAt: new Date(performance.timeOrigin + started),
      latencyMs: performance.now() - started,
      correlationId: message.correlationId || message.messageId,
      ...(failed ? { error: { code: code!, message: messageOf(error) } } : { result }),
    });
    try {
      await this.#options.send(answer);
      this.#options.onAnswered?.(failed ? 'errors' : 'results', code);
      await this.#options.complete(message);
    } catch (sendError) {
      // Given up by the outbox (its bound, or the module stopping): counted there; said here with the message's id.
      this.#options.log.warn({ err: sendError, messageId: message.messageId }, 'an answer could not be sent to edgeHub and was given up');
    }
  }
}

function toRequest(message: InputMessage): ScoreRequest {
  const contentType = imageContentType(message.contentType);
  if (contentType) return { kind: 'image', image: message.data, contentType };
  try {
    return { kind: 'json', body: JSON.parse(message.data.toString('utf8')) };
  } catch (error) {
    throw new EdgeInferError('EI_BAD_JSON', [messageOf(error)], error);
  }
}
