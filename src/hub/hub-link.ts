/**
 * The module's link to IoT Hub through edgeHub (azure-iot-device over MQTT). One rule, held by construction:
 * one session at a time, and a session that shows any sign of loss is closed and replaced by a new one, which
 * subscribes afresh and reads the whole twin (see hub-session.ts for the signs). The old client is closed
 * (bounded wait) before the new one opens, so two clients of the module never hold the same client id.
 * Between failed attempts the link backs off (1 s doubling to 10 s: edgeHub is on the same device).
 *
 * The link's state is in the status store (`runtime.hub`), and so in `GET /status` and the reported properties.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import deviceSdk from 'azure-iot-device';
import { backoffDelay, type Backoff } from '../backoff.js';
import type { DesiredState } from '../config/desired-state.js';
import { messageOf } from '../errors.js';
import type { OutputMessage } from '../sources/result-message.js';
import type { StatusStore } from '../status/store.js';
import { DesiredTwin } from './desired-twin.js';
import { HubSession, type LossCause } from './hub-session.js';
import { InputScorer } from './messages.js';
import type { MethodContext } from './methods.js';
import { Outbox } from './outbox.js';
import type { ReportedProperties } from './reported.js';

type ModuleClient = deviceSdk.ModuleClient;

export interface HubLinkOptions {
  /** Makes a new, unopened client (fromEnvironment or fromConnectionString). */
  createClient: () => Promise<ModuleClient>;
  /** Takes each desired state (after a connect, and after each patch), or the problem with it. */
  onDesired: (state: DesiredState | string) => void;
  reported: ReportedProperties;
  status: StatusStore;
  methods: MethodContext;
  log: Logger;
  /** Counts answered input messages (metrics). */
  onAnswered?: (output: 'results' | 'errors', code?: string) => void;
  /** Counts sessions replaced, by why the old one ended (metrics). */
  onReconnect?: (cause: LossCause) => void;
  /** Counts output messages given up while edgeHub was out of reach (metrics). */
  onOutputDropped?: (output: string) => void;
  /** Most output messages kept while edgeHub is out of reach (outbox.ts). */
  outboxLimit?: number;
  /** The limit on every SDK call. */
  operationMs?: number;
  keepAliveSeconds?: number;
  twinResyncMs?: number;
  retry?: Backoff;
}

export class HubLink {
  readonly #options: HubLinkOptions;
  readonly #desired = new DesiredTwin();
  readonly #scorer: InputScorer;
  readonly #outbox: Outbox;
  readonly #stopping = new AbortController();
  #session: HubSession | undefined;
  #reconnects = 0;
  #running: Promise<void> | undefined;

  constructor(options: HubLinkOptions) {
    this.#options = options;
    this.#outbox = new Outbox({
      deliver: (message) => this.#deliver(message),
      limit: options.outboxLimit ?? 1000,
      log: options.log,
      onWaiting: (waitingOutputs) => options.status.updateHub({ waitingOutputs }),
      ...(options.onOutputDropped ? { onDropped: options.onOutputDropped } : {}),
    });
    this.#scorer = new InputScorer({
      registry: options.methods.registry,
      defaultModel: options.methods.defaultModel,
      outputName: () => this.#desired.outputName(),
      send: (message) => this.send(message),
      complete: (message) => this.#call('completing a message', (client) => client.complete(message as deviceSdk.Message)).then(() => undefined),
      log: options.log,
      ...(options.onAnswered ? { onAnswered: options.onAnswered } : {}),
    });
  }

  /** Starts the link in the background (the service does not wait for the hub). */
  start(): void {
    this.#running ??= this.#supervise();
  }

  /** Stops taking messages, answers those accepted, sends the last reported properties, closes the client. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    this.#outbox.stop();
    await this.#scorer.drain();
    await this.#options.reported.flush();
    this.#options.reported.detach();
    this.#session?.end({ cause: 'stopped', detail: 'the module is stopping' });
    await this.#running;
  }

  /**
   * Sends one message to an output. While edgeHub is out of reach the message waits in the outbox, and the
   * promise resolves once it is sent; it rejects only when the message is given up (outbox.ts).
   */
  send(message: OutputMessage): Promise<void> {
    return this.#outbox.send(message);
  }

  /** One attempt on the session of the moment; rejects when not connected or not acknowledged in time. */
  async #deliver(message: OutputMessage): Promise<void> {
    const out = new deviceSdk.Message(message.body);
    out.contentType = 'application/json';
    out.contentEncoding = 'utf-8';
    if (message.correlationId) out.correlationId = message.correlationId;
    for (const [key, value] of Object.entries(message.properties)) out.properties.add(key, value);
    await this.#call(`sending to ${message.output}`, (client) => client.sendOutputEvent(message.output, out));
  }

  /** Sessions, one after the other, until the module stops. */
  async #supervise(): Promise<void> {
    const { status, log } = this.#options;
    const retry = this.#options.retry ?? { firstMs: 1000, mostMs: 10_000 };
    let failures = 0;
    while (!this.#stopping.signal.aborted) {
      status.updateHub({ state: 'connecting' });
      const session = await this.#open().catch((error: unknown) => {
        const waitMs = backoffDelay(failures++, retry);
        log.warn({ err: messageOf(error), retryInMs: waitMs }, 'IoT Hub connection failed');
        status.updateHub({ state: 'backoff' });
        return sleep(waitMs, undefined, { signal: this.#stopping.signal }).catch(() => undefined);
      });
      if (!session) continue;
      failures = 0;
      this.#session = session;
      status.updateHub({ state: 'connected' });
      log.info({ desiredVersion: this.#desired.version }, 'connected to IoT Hub; module twin read');
      this.#options.reported.attach(session.sendReported, session.reportedOnOpen());
      void this.#outbox.resume();
      const loss = await session.ended;
      this.#session = undefined;
      this.#options.reported.detach();
      if (loss.cause !== 'stopped') {
        log.warn(loss, 'IoT Hub session lost; closing it and starting a new one');
        status.updateHub({ state: 'connecting', reconnects: ++this.#reconnects, lastLoss: { cause: loss.cause, at: new Date().toISOString() } });
        this.#options.onReconnect?.(loss.cause);
      }
      await session.close();
    }
  }

  /** A new client, opened, with the whole twin read and applied; on failure the client is closed. */
  async #open(): Promise<HubSession> {
    const { log, status } = this.#options;
    const operationMs = this.#options.operationMs ?? 15_000;
    const session = new HubSession(await this.#options.createClient(), {
      desired: this.#desired,
      onDesired: (state) => {
        status.updateHub({ desiredVersion: this.#desired.version });
        this.#options.onDesired(state);
      },
      onTwinRead: () => status.updateHub({ lastTwinSync: new Date().toISOString() }),
      onInput: (input, message) => this.#scorer.take(input, message),
      methods: this.#options.methods,
      log,
      operationMs,
      keepAliveSeconds: this.#options.keepAliveSeconds ?? 30,
      twinResyncMs: this.#options.twinResyncMs ?? 300_000,
    });
    try {
      await session.open();
      return session;
    } catch (error) {
      await session.close();
      throw error;
    }
  }

  #call<T>(what: string, work: (client: ModuleClient) => Promise<T>): Promise<T> {
    const session = this.#session;
    if (!session) return Promise.reject(new Error(`${what}: not connected to IoT Hub`));
    return session.call(what, work);
  }
}
