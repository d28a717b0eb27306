/**
 * A TCP proxy between the module and its hub that can go silent: the network drops every packet, no FIN, no
 * RST, neither side is told. Like TCP over a broken link, what is sent meanwhile is held, not lost; when the
 * link comes back the held bytes go through, and a side that gave up meanwhile has its close passed on then.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Bytes held while silent, per direction. */
  held: { up: Buffer[]; down: Buffer[] };
  closed: boolean;
}

export class SilentProxy {
  port = 0;
  #silent = false;
  readonly #targetPort: number;
  readonly #pairs = new Set<Pair>();
  #server: Server | undefined;

  constructor(targetPort: number) {
    this.#targetPort = targetPort;
  }

  get silent(): boolean {
    return this.#silent;
  }

  async start(): Promise<void> {
    this.#server = createServer((client) => this.#accept(client));
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }

  /** From now on nothing passes, in either direction, and no close is seen by the other side. */
  goSilent(): void {
    this.#silent = true;
  }

  /** The link is back: held bytes go through, and closes that happened meanwhile reach the other side. */
  resume(): void {
    this.#silent = false;
    for (const pair of this.#pairs) {
      if (pair.closed) this.#close(pair);
      else {
        for (const chunk of pair.held.up.splice(0)) pair.upstream.write(chunk);
        for (const chunk of pair.held.down.splice(0)) pair.client.write(chunk);
      }
    }
  }

  async close(): Promise<void> {
    for (const pair of this.#pairs) this.#close(pair);
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  #accept(client: Socket): void {
    const upstream = connect(this.#targetPort, '127.0.0.1');
    const pair: Pair = { client, upstream, held: { up: [], down: [] }, closed: false };
    this.#pairs.add(pair);
    client.on('data', (chunk: Buffer) => (this.#silent ? pair.held.up.push(chunk) : upstream.write(chunk)));
    upstream.on('data', (chunk: Buffer) => (this.#silent ? pair.held.down.push(chunk) : client.write(chunk)));
    const ended = () => {
      pair.closed = true;
      if (!this.#silent) this.#close(pair);
    };
    for (const socket of [client, upstream]) {
      socket.on('error', () => undefined);
      socket.on('close', ended);
    }
  }

  #close(pair: Pair): void {
    this.#pairs.delete(pair);
    pair.client.destroy();
    pair.upstream.destroy();
  }
}
