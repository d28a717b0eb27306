/**
 * One session with edgeHub: one SDK client, opened once, with fresh subscriptions and a full twin read, used
 * until the first sign that the connection may have been lost, then closed for good. Nothing in a session is
 * repaired in place: the SDK 1.18 twin client does not subscribe again after a reconnect of its own, and a
 * broker that forgot the session would then never send another desired patch. So every such sign ends the
 * session (`ended` resolves with why) and the hub link opens a new one.
 *
 * The signs: the transport disconnects or errs (the SDK's own retries are off, so every close is seen), the
 * SDK connects again by itself, an operation times out (a half-open connection), or the periodic full twin
 * read finds a desired `$version` newer than the last one applied (patches are not arriving).
 */
import type { Logger } from 'pino';
import commonSdk from 'azure-iot-common';
import deviceSdk from 'azure-iot-device';
import type { DesiredState } from '../config/desired-state.js';
import { messageOf } from '../errors.js';
import type { DesiredTwin } from './desired-twin.js';
import type { InputMessage } from './messages.js';
import { callMethod, METHOD_NAMES, type MethodContext } from './methods.js';
import type { SendReported } from './reported.js';
import { OperationTimeout, withTimeout } from './timeout.js';

type ModuleClient = deviceSdk.ModuleClient;
type Twin = deviceSdk.Twin;
type DesiredProperties = Record<string, unknown>;

/** Why a session ended; `stopped` is the module shutting down. */
export type LossCause = 'disconnected' | 'error' | 'reconnected' | 'timeout' | 'missed-patch' | 'stopped';

export interface Loss {
  cause: LossCause;
  detail: string;
}

export interface SessionOptions {
  desired: DesiredTwin;
  onDesired: (state: DesiredState | string) => void;
  /** A full twin read succeeded (on open and by the periodic read). */
  onTwinRead: () => void;
  onInput: (input: string, message: InputMessage) => void;
  methods: MethodContext;
  log: Logger;
  /** The limit on every SDK call. */
  operationMs: number;
  /** MQTT keep-alive: mqtt.js closes a connection whose pings go unanswered for twice this. */
  keepAliveSeconds: number;
  /** How often the whole twin is read to catch patches that never arrived. */
  twinResyncMs: number;
}

export class HubSession {
  /** Resolves once, with the first sign that this session is lost. */
  readonly ended: Promise<Loss>;
  readonly #client: ModuleClient;
  readonly #options: SessionOptions;
  #end!: (loss: Loss) => void;
  #over = false;
  #opened = false;
  #twin: Twin | undefined;
  /** Rejects the calls still waiting when the session ends: a closed client may never call them back. */
  readonly #inFlight = new Set<(error: Error) => void>();
  #resyncTimer: NodeJS.Timeout | undefined;

  constructor(client: ModuleClient, options: SessionOptions) {
    this.#client = client;
    this.#options = options;
    this.ended = new Promise((resolve) => (this.#end = resolve));
    // Every close reaches us as `disconnect`; the SDK's retries would reconnect silently, without the twin topics.
    client.setRetryPolicy(new commonSdk.NoRetry());
    client.on('error', (error: Error) => this.end({ cause: 'error', detail: messageOf(error) }));
    client.on('disconnect', () => this.end({ cause: 'disconnected', detail: 'the transport closed' }));
    client.on('connect', () => {
      if (this.#opened) this.end({ cause: 'reconnected', detail: 'the SDK connected again by itself' });
    });
  }

  /** Connects, subscribes, reads the whole twin, applies it and follows its patches; rejects when any step fails. */
  async open(): Promise<void> {
    await this.#setKeepAlive();
    await this.call('opening the IoT Hub connection', () => this.#client.open());
    this.#opened = true;
    this.#subscribe();
    const twin = await this.call('reading the module twin', () => this.#client.getTwin());
    this.#twin = twin;
    twin.on('error', (error: Error) => this.end({ cause: 'error', detail: `twin: ${messageOf(error)}` }));
    this.#options.onDesired(this.#options.desired.replace(plain(twin.properties.desired as unknown as DesiredProperties)));
    this.#options.onTwinRead();
    twin.on('properties.desired', (patch: DesiredProperties) => {
      // A twin read (and adding this listener) fires the event with the SDK's merged copy of the whole twin;
      // that copy keeps properties deleted since, so only the replace above and real patches are applied.
      if (patch === (twin.properties.desired as unknown)) return;
      const state = this.#options.desired.patch(plain(patch));
      if (state !== undefined) this.#options.onDesired(state);
    });
    this.#resyncTimer = setInterval(() => void this.#resync(), this.#options.twinResyncMs);
  }

  /**
   * Inputs and methods, only once open: the SDK subscribes as soon as a listener is added, and would otherwise
   * open connections of its own beside open()'s. A subscription that fails is an 'error', which ends the session.
   */
  #subscribe(): void {
    const options = this.#options;
    this.#client.on('inputMessage', (input: string, message: InputMessage) => options.onInput(input, message));
    for (const name of METHOD_NAMES) {
      this.#client.onMethod(name, (request, response) => {
        void callMethod(name, request!.payload, options.methods)
          .then((answer) => this.call(`answering ${name}`, () => response!.send(answer.status, answer.payload)))
          .catch((error: unknown) => options.log.warn({ err: messageOf(error), method: name }, 'a direct method answer was not sent'));
      });
    }
  }

  /** The reported properties' sender for this session. */
  readonly sendReported: SendReported = (patch) =>
    this.call('reporting properties', () => {
      const reported = this.#twin!.properties.reported;
      return new Promise<void>((resolve, reject) => reported.update(patch, (error?: Error) => (error ? reject(error) : resolve())));
    });

  /** The properties the twin reports as read on open (to clear entries the module no longer has). */
  reportedOnOpen(): DesiredProperties {
    return plain(this.#twin!.properties.reported as unknown as DesiredProperties);
  }

  /** One SDK call with the time limit; a call that runs out of time ends the session, and the session's end ends the call. */
  call<T>(what: string, work: (client: ModuleClient) => Promise<T>): Promise<T> {
    if (this.#over) return Promise.reject(new Error(`${what}: the IoT Hub session has ended`));
    return new Promise<T>((resolve, reject) => {
      const abort = (error: Error) => reject(new Error(`${what}: ${error.message}`));
      this.#inFlight.add(abort);
      withTimeout(what, this.#options.operationMs, work(this.#client))
        .then(resolve, (error: unknown) => {
          if (error instanceof OperationTimeout) this.end({ cause: 'timeout', detail: error.message });
          reject(error);
        })
        .finally(() => this.#inFlight.delete(abort));
    });
  }

  end(loss: Loss): void {
    if (this.#over) return;
    this.#over = true;
    clearInterval(this.#resyncTimer);
    for (const abort of this.#inFlight) abort(new Error(`the IoT Hub session ended (${loss.cause}: ${loss.detail})`));
    this.#inFlight.clear();
    this.#end(loss);
  }

  /**
   * Closes the client and ignores anything it does from now on. The SDK defers a close until a connection
   * attempt under way has finished; one still not closed after 5 s has its MQTT socket ended by force, so that
   * the next session's client never meets this one at the broker under the same client id.
   */
  async close(): Promise<void> {
    this.end({ cause: 'stopped', detail: 'closed' });
    this.#client.removeAllListeners();
    this.#twin?.removeAllListeners();
    // A closed client's stray events are ignored, but an 'error' with no listener would throw.
    this.#client.on('error', () => undefined);
    const closed = await withTimeout('closing the IoT Hub client', 5000, this.#client.close()).then(
      () => true,
      () => false,
    );
    if (!closed) {
      this.#options.log.warn('the IoT Hub client did not close within 5 s; ending its connection by force');
      const transport = (this.#client as unknown as { _transport?: { _mqtt?: { _mqttClient?: { end(force: boolean): void } } } })._transport;
      transport?._mqtt?._mqttClient?.end(true);
    }
  }

  async #resync(): Promise<void> {
    try {
      const twin = await this.call('reading the module twin', (client) => client.getTwin());
      const version = (twin.properties.desired as unknown as DesiredProperties).$version;
      const applied = this.#options.desired.version;
      if (typeof version === 'number' && version > applied) {
        this.end({ cause: 'missed-patch', detail: `the twin's desired properties are at $version ${version}, the module applied ${applied}` });
      } else {
        this.#options.onTwinRead();
      }
    } catch (error) {
      if (!this.#over) this.#options.log.warn({ err: messageOf(error) }, 'the periodic twin read failed');
    }
  }

  /**
   * The SDK's setOptions replaces the transport's options, and `fromEnvironment` has put the CA of the IoT Edge
   * trust bundle there: the keep-alive is added to what is there, not set alone.
   */
  async #setKeepAlive(): Promise<void> {
    const transport = (this.#client as unknown as { _transport?: { _mqtt?: { _options?: Record<string, unknown> } } })._transport;
    const current = transport?._mqtt?._options ?? {};
    await this.call('configuring the IoT Hub client', (client) => client.setOptions({ ...current, keepalive: this.#options.keepAliveSeconds }));
  }
}

/** The twin's property objects carry SDK methods and metadata; keep the data. */
function plain(value: DesiredProperties): DesiredProperties {
  return JSON.parse(JSON.stringify(value)) as DesiredProperties;
}
