/**
 * An edgeHub for tests: a real MQTT broker (aedes) behind node:tls with a test CA, speaking the IoT Hub MQTT
 * conventions the device SDK uses: SAS tokens in CONNECT, the module twin (GET, reported PATCH, desired
 * patches with $version), direct methods, module inputs and outputs.
 *
 * As strict as the real one: everything the hub sends (twin responses, desired patches, method calls, input
 * messages) goes through the broker's routing, so it reaches a client only through a subscription that client
 * holds now; a client that lost its subscriptions hears nothing. Sessions (`clean: false` subscriptions) live in
 * the broker's persistence, which survives a restart unless `forgetSessions()` drops it, as a recreated edgeHub
 * container without a mounted storage folder does.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { createServer, type Server } from 'node:tls';
import { Aedes, type Client } from 'aedes';
import createPersistence from 'aedes-persistence';

/** The package's types declare an ES default export; Node hands an ES module the CommonJS factory itself. */
const memoryPersistence = createPersistence as unknown as () => object;
/** What the broker holds at run time beyond its declared types: connected clients by id, and their subscriptions. */
type BrokerClients = { clients: Record<string, (Client & { subscriptions: Record<string, unknown> }) | undefined> };
import { mergePatch } from '../../src/config/desired-state.js';

export interface OutputMessage {
  output: string;
  body: Buffer;
  properties: Record<string, string>;
}

export interface EdgeHubOptions {
  tls: { cert: Buffer; key: Buffer };
  hubName: string;
  deviceId: string;
  moduleId: string;
  /** The module's key, base64. */
  key: string;
  desired?: Record<string, unknown>;
}

export class EdgeHub {
  readonly outputs: OutputMessage[] = [];
  readonly reportedPatches: Array<Record<string, unknown>> = [];
  reported: Record<string, unknown> = {};
  desired: Record<string, unknown>;
  desiredVersion = 1;
  port = 0;
  connections = 0;
  /** CONNECTs of the module that arrived while another client of the module was still connected. */
  overlaps = 0;
  #broker!: Aedes;
  #server!: Server;
  #running = false;
  #persistence = memoryPersistence();
  #sockets = new Set<Socket>();
  #pending = new Map<string, (status: number, payload: unknown) => void>();
  #outputWaiters: Array<() => void> = [];
  #outputListeners: Array<(message: OutputMessage) => void> = [];
  readonly #options: EdgeHubOptions;

  constructor(options: EdgeHubOptions) {
    this.#options = options;
    this.desired = options.desired ?? {};
  }

  get connectionString(): string {
    return this.connectionStringVia(this.port);
  }

  /** The module's connection string with its gateway at `port` (a proxy in front of this hub, say). */
  connectionStringVia(port: number): string {
    const { hubName, deviceId, moduleId, key } = this.#options;
    return `HostName=${hubName};DeviceId=${deviceId};ModuleId=${moduleId};SharedAccessKey=${key};GatewayHostName=127.0.0.1:${port}`;
  }

  get running(): boolean {
    return this.#running;
  }

  async start(port = 0): Promise<void> {
    this.#broker = await Aedes.createBroker({ heartbeatInterval: 3_600_000, persistence: this.#persistence as never });
    this.#broker.authenticate = (client, username, password, done) => {
      const ok = this.#authenticate(client, username, password);
      if (ok && (this.#broker as unknown as BrokerClients).clients[client.id]?.connected) this.overlaps++;
      done(null, ok);
    };
    this.#broker.on('clientReady', () => this.connections++);
    this.#broker.on('publish', (packet, client) => {
      if (client) this.#onPublish(packet.topic, Buffer.from(packet.payload as Buffer));
    });
    this.#server = createServer(this.#options.tls, (socket) => {
      socket.setNoDelay(true);
      this.#broker.handle(socket);
    });
    // The TCP sockets under TLS, which an abrupt stop resets.
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.#server.listen(port, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
    this.#running = true;
  }

  /** The next start begins with no sessions: the module's subscriptions are gone unless it subscribes again. */
  forgetSessions(): void {
    this.#persistence = memoryPersistence();
  }

  /** The topics the module's connected client is subscribed to now (none when it is not connected). */
  subscriptions(): string[] {
    const client = this.#moduleClient();
    return client ? Object.keys(client.subscriptions) : [];
  }

  /** Drops one of the module's subscriptions on the hub's side, as a hub that lost part of a session would. */
  async dropSubscription(topic: string): Promise<void> {
    const client = this.#moduleClient();
    if (!client) throw new Error('the module is not connected');
    await new Promise<void>((resolve, reject) => client.unsubscribe({ unsubscriptions: [topic] } as never, (error?: Error) => (error ? reject(error) : resolve())));
  }

  /** Stops the broker: `abrupt` resets the sockets, otherwise the broker closes them in order (TLS close_notify, FIN). */
  async stop(abrupt = false): Promise<void> {
    this.#running = false;
    if (abrupt) for (const socket of this.#sockets) socket.resetAndDestroy();
    await new Promise<void>((resolve) => this.#broker.close(() => resolve()));
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
  }

  /**
   * Changes the desired properties, as IoT Hub does after a twin update: the twin holds the change at once
   * and a running hub sends the patch to whoever subscribed; a stopped one sends nothing (a module learns of
   * it from its next twin read).
   */
  async patchDesired(patch: Record<string, unknown>): Promise<void> {
    this.desiredVersion++;
    this.desired = mergePatch(this.desired, patch) as Record<string, unknown>;
    if (this.#running) await this.#publish(`$iothub/twin/PATCH/properties/desired/?$version=${this.desiredVersion}`, { ...patch, $version: this.desiredVersion });
  }

  /** Delivers a message to the module's input, with application properties; resolves with its message id. */
  async sendInput(input: string, body: Buffer | string, properties: Record<string, string> = {}, messageId: string = randomUUID()): Promise<string> {
    const props = new URLSearchParams({ ...properties, '$.mid': messageId });
    const { deviceId, moduleId } = this.#options;
    // At least once, as edgeHub delivers inputs: a kept session gets what was sent while it was away.
    await this.#publish(`devices/${deviceId}/modules/${moduleId}/inputs/${input}/${props.toString()}`, body, 1);
    return messageId;
  }

  /** Invokes a direct method and resolves with its status and payload. */
  async invoke(method: string, payload: unknown, timeoutMs = 20_000): Promise<{ status: number; payload: unknown }> {
    const rid = randomUUID();
    const answer = new Promise<{ status: number; payload: unknown }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`method ${method} got no answer`)), timeoutMs);
      this.#pending.set(rid, (status, body) => (clearTimeout(timer), resolve({ status, payload: body })));
    });
    await this.#publish(`$iothub/methods/POST/${method}/?$rid=${rid}`, payload);
    return answer;
  }

  /** Calls `listener` with every output message from now on. */
  onOutput(listener: (message: OutputMessage) => void): void {
    this.#outputListeners.push(listener);
  }

  /** Resolves when `count` messages have reached outputs in all. */
  async waitForOutputs(count: number, timeoutMs = 20_000): Promise<OutputMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.outputs.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.outputs.length} of ${count} output messages arrived`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.#outputWaiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
    return this.outputs;
  }

  #authenticate(client: Client, username: string | undefined, password: Buffer | undefined): boolean {
    const { hubName, deviceId, moduleId, key } = this.#options;
    if (client.id !== `${deviceId}/${moduleId}`) return false;
    if (!username?.startsWith(`${hubName}/${deviceId}/${moduleId}/`)) return false;
    const token = new URLSearchParams((password?.toString() ?? '').replace(/^SharedAccessSignature /, '').replace(/\+/g, '%2B'));
    const sr = token.get('sr') ?? '';
    const se = token.get('se') ?? '';
    const expected = createHmac('sha256', Buffer.from(key, 'base64')).update(`${encodeURIComponent(sr)}\n${se}`).digest('base64');
    return sr.toLowerCase() === `${hubName}/devices/${deviceId}/modules/${moduleId}`.toLowerCase() && token.get('sig') === expected && Number(se) * 1000 > Date.now();
  }

  #onPublish(topic: string, payload: Buffer): void {
    const rid = /\$rid=([^&]+)/.exec(topic)?.[1];
    if (topic.startsWith('$iothub/twin/GET/')) {
      void this.#publish(`$iothub/twin/res/200/?$rid=${rid}`, {
        desired: { ...this.desired, $version: this.desiredVersion },
        reported: { ...this.reported, $version: this.reportedPatches.length + 1 },
      });
    } else if (topic.startsWith('$iothub/twin/PATCH/properties/reported/')) {
      const patch = JSON.parse(payload.toString()) as Record<string, unknown>;
      this.reportedPatches.push(patch);
      this.reported = mergePatch(this.reported, patch) as Record<string, unknown>;
      void this.#publish(`$iothub/twin/res/204/?$rid=${rid}&$version=${this.reportedPatches.length + 1}`, '');
    } else if (topic.startsWith('$iothub/methods/res/')) {
      const status = Number(topic.split('/')[3]);
      this.#pending.get(rid ?? '')?.(status, payload.length ? JSON.parse(payload.toString()) : null);
      this.#pending.delete(rid ?? '');
    } else if (topic.includes('/messages/events/')) {
      const properties = Object.fromEntries(new URLSearchParams(topic.slice(topic.indexOf('/messages/events/') + '/messages/events/'.length).replace(/\/$/, '')));
      const message = { output: properties['$.on'] ?? '', body: payload, properties };
      this.outputs.push(message);
      for (const listener of this.#outputListeners) listener(message);
      for (const wake of this.#outputWaiters.splice(0)) wake();
    }
  }

  #moduleClient(): BrokerClients['clients'][string] {
    const { deviceId, moduleId } = this.#options;
    const client = this.#running ? (this.#broker as unknown as BrokerClients).clients[`${deviceId}/${moduleId}`] : undefined;
    return client?.connected ? client : undefined;
  }

  /** Publishes through the broker's routing: only subscribers get it. */
  #publish(topic: string, payload: unknown, qos: 0 | 1 = 0): Promise<void> {
    if (!this.#running) return Promise.reject(new Error('the hub is stopped'));
    const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
    return new Promise((resolve, reject) =>
      this.#broker.publish({ cmd: 'publish', topic, payload: body, qos, dup: false, retain: false }, (error?: Error | null) => (error ? reject(error) : resolve())),
    );
  }
}

