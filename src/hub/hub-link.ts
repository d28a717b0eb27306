/**
 * The module's link to IoT Hub through edgeHub (azure-iot-device over MQTT): connect, read the whole twin,
 * follow desired patches, report, take input messages, answer direct methods; and after anything that may have
 * lost the session (an error, a disconnect, a reconnect the SDK made by itself), start over with a fresh client
 * and a full twin read. SDK 1.18 does not re-subscribe the twin topics after such a reconnect and can wait on a
 * twin GET forever, so every call to it has a time limit (contract section 2; issue notes in README).
 */
import type { Logger } from 'pino';
import deviceSdk from 'azure-iot-device';
import type { DesiredState } from '../config/desired-state.js';
import { messageOf } from '../errors.js';
import { DesiredTwin } from './desired-twin.js';
import type { OutputMessage } from '../sources/result-message.js';
import type { InputMessage } from './messages.js';
import { InputScorer } from './messages.js';
import { callMethod, METHOD_NAMES, type MethodContext } from './methods.js';
import type { ReportedProperties } from './reported.js';
import { withTimeout } from './timeout.js';

type ModuleClient = deviceSdk.ModuleClient;
type Twin = deviceSdk.Twin;

export interface HubLinkOptions {
  /** Makes a new, unopened client (fromEnvironment or fromConnectionString). */
  createClient: () => Promise<ModuleClient>;
  /** Takes each desired state (after a connect, and after each patch), or the problem with it. */
  onDesired: (state: DesiredState | string) => void;
  reported: ReportedProperties;
  methods: MethodContext;
  log: Logger;
  /** Counts answered input messages (metrics). */
  onAnswered?: (output: 'results' | 'errors', code?: string) => void;
  /** The limit on every SDK call. */
  operationMs?: number;
  /** Backoff between connection attempts: doubles from the first, up to the most. */
  retryMs?: { first: number; most: number };
  /** `connect` events within this long after open() are the SDK's own start-up noise. */
  connectGraceMs?: number;
}

export class HubLink {
  readonly #options: HubLinkOptions;
  readonly #desired = new DesiredTwin();
  readonly #scorer: InputScorer;
  /** The client in use; events from any other (an older one, or one still opening) are ignored. */
  #client: ModuleClient | undefined;
  #stopping = false;
  #connecting: Promise<void> | undefined;

  constructor(options: HubLinkOptions) {
    this.#options = options;
    this.#scorer = new InputScorer({
      registry: options.methods.registry,
      defaultModel: options.methods.defaultModel,
      outputName: () => this.#desired.outputName(),
      send: (message) => this.send(message),
      complete: async (message) => {
        await this.#call('completing a message', (client) => client.complete(message as deviceSdk.Message));
      },
      log: options.log,
      ...(options.onAnswered ? { onAnswered: options.onAnswered } : {}),
    });
  }

  /** Starts connecting; resolves once the first attempt has begun (the service does not wait for the hub). */
  start(): void {
    this.#connecting ??= this.#connectLoop().finally(() => (this.#connecting = undefined));
  }

  /** Stops taking messages, answers those accepted, sends the last reported properties, closes the client. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#scorer.drain();
    await this.#options.reported.flush();
    this.#options.reported.detach();
    await this.#close(this.#client);
  }

  async #connectLoop(): Promise<void> {
    const { first, most } = this.#options.retryMs ?? { first: 1000, most: 30_000 };
    for (let attempt = 0; !this.#stopping; attempt++) {
      try {
        await this.#connect();
        return;
      } catch (error) {
        const wait = Math.min(most, first * 2 ** attempt) * (0.5 + Math.random() / 2);
        this.#options.log.warn({ err: messageOf(error), retryInMs: Math.round(wait) }, 'IoT Hub connection failed');
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  async #connect(): Promise<void> {
    const limit = this.#options.operationMs ?? 15_000;
    const client = await withTimeout('creating the IoT Hub client', limit, this.#options.createClient());
    // Until it is the client in use, a failure of this one is the connect loop's to handle.
    const lost = (why: string) => this.#lost(client, why);
    let openedAt = Number.POSITIVE_INFINITY;
    client.on('error', (error: Error) => lost(`error: ${error.message}`));
    client.on('disconnect', () => lost('disconnected'));
    client.on('connect', () => {
      // After a reconnect of its own the SDK has lost the twin subscriptions: start over.
      if (Date.now() - openedAt > (this.#options.connectGraceMs ?? 5000)) lost('the SDK reconnected by itself');
    });
    client.on('inputMessage', (input: string, message: InputMessage) => this.#scorer.take(input, message));
    for (const name of METHOD_NAMES) {
      client.onMethod(name, (request, response) => {
        void callMethod(name, request!.payload, this.#options.methods)
          .then((answer) => withTimeout(`answering ${name}`, limit, response!.send(answer.status, answer.payload)))
          .catch((error: unknown) => this.#options.log.warn({ err: messageOf(error), method: name }, 'a direct method answer was not sent'));
      });
    }
    try {
      await withTimeout('opening the IoT Hub connection', limit, client.open());
      openedAt = Date.now();
      const twin = await withTimeout('reading the module twin', limit, client.getTwin());
      this.#client = client;
      this.#followTwin(twin, limit);
      this.#options.log.info('connected to IoT Hub; module twin read');
    } catch (error) {
      await this.#close(client);
      throw error;
    }
  }

  #followTwin(twin: Twin, limit: number): void {
    const { desired, reported } = twin.properties as unknown as { desired: Record<string, unknown>; reported: Record<string, unknown> & { update: Twin['properties']['reported']['update'] } };
    this.#options.onDesired(this.#desired.replace(plain(desired)));
    twin.on('properties.desired', (patch: Record<string, unknown>) => {
      const state = this.#desired.patch(plain(patch));
      if (state !== undefined) this.#options.onDesired(state);
    });
    this.#options.reported.attach(
      (patch) => withTimeout('reporting properties', limit, new Promise<void>((resolve, reject) => reported.update(patch, (error?: Error) => (error ? reject(error) : resolve())))),
      plain(reported),
    );
  }

  #lost(client: ModuleClient, why: string): void {
    if (client !== this.#client || this.#stopping) return;
    this.#options.log.warn({ why }, 'IoT Hub connection lost; reconnecting with a new client');
    this.#options.reported.detach();
    this.#client = undefined;
    void this.#close(client);
    this.start();
  }

  async #close(client: ModuleClient | undefined): Promise<void> {
    if (!client) return;
    client.removeAllListeners();
    await withTimeout('closing the IoT Hub client', 5000, client.close()).catch(() => undefined);
  }

  /** Sends one message to an output; rejects when not connected or not acknowledged in time. */
  async send(message: OutputMessage): Promise<void> {
    const out = new deviceSdk.Message(message.body);
    out.contentType = 'application/json';
    out.contentEncoding = 'utf-8';
    if (message.correlationId) out.correlationId = message.correlationId;
    for (const [key, value] of Object.entries(message.properties)) out.properties.add(key, value);
    await this.#call(`sending to ${message.output}`, (client) => client.sendOutputEvent(message.output, out));
  }

  async #call<T>(what: string, work: (client: ModuleClient) => Promise<T>): Promise<T> {
    const client = this.#client;
    if (!client) throw new Error(`${what}: not connected to IoT Hub`);
    return withTimeout(what, this.#options.operationMs ?? 15_000, work(client));
  }
}

/** The twin's property objects carry SDK methods and metadata; keep the data. */
function plain(value: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
}
