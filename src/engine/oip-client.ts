/**
 * HTTP to an Open Inference Protocol server: one kept-alive connection pool per server, a deadline on every
 * request, and retries for idempotent calls only (a GET may be repeated; an inference or a `load` may not).
 * Credentials (headers, client certificates) go on the wire and nowhere else: errors name the server by its
 * origin and path only.
 */
import http from 'node:http';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { EdgeInferError, messageOf } from '../errors.js';
import type { AcceleratorSettings } from './target.js';

export interface OipResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRIES = 2;
/** Sockets kept per server: enough for the module's requests in flight, few enough for a small device. */
const POOL_SIZE = 16;

/** The server's URL with no user, password or query: what logs and messages may show. */
export function safeUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/$/, '')}`;
}

export class OipClient {
  readonly where: string;
  readonly #base: URL;
  readonly #agent: http.Agent;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #retries: number;

  private constructor(settings: AcceleratorSettings, agent: http.Agent) {
    this.#base = new URL(settings.url.endsWith('/') ? settings.url : `${settings.url}/`);
    this.where = safeUrl(settings.url);
    this.#agent = agent;
    this.#headers = { ...settings.headers };
    if (this.#base.username) {
      this.#headers.authorization ??= `Basic ${Buffer.from(`${decodeURIComponent(this.#base.username)}:${decodeURIComponent(this.#base.password)}`).toString('base64')}`;
    }
    this.#timeoutMs = settings.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#retries = settings.retries ?? DEFAULT_RETRIES;
  }

  static async create(settings: AcceleratorSettings): Promise<OipClient> {
    const common = { keepAlive: true, maxSockets: POOL_SIZE, maxFreeSockets: POOL_SIZE };
    if (!settings.url.startsWith('https:')) return new OipClient(settings, new http.Agent(common));
    const files = settings.tls ?? {};
    const read = (file: string | undefined) => (file ? readFile(file) : Promise.resolve(undefined));
    const [ca, cert, key] = await Promise.all([read(files.ca), read(files.cert), read(files.key)]).catch((error: unknown) => {
      throw new EdgeInferError('EI_ACCELERATOR_UNAVAILABLE', [safeUrl(settings.url), `its TLS files cannot be read: ${messageOf(error)}`], error);
    });
    return new OipClient(settings, new https.Agent({ ...common, ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) }));
  }

  /** An idempotent call: retried on a transport error or a 5xx answer, with a short pause between tries. */
  async get(path: string): Promise<OipResponse> {
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await this.#request('GET', path);
        if (response.status < 500 || attempt >= this.#retries) return response;
      } catch (error) {
        if (attempt >= this.#retries) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
    }
  }

  /** Not retried: the server may have done the work before the answer was lost. */
  post(path: string, body: readonly Uint8Array[], headers: Record<string, string | number> = {}): Promise<OipResponse> {
    return this.#request('POST', path, body, headers);
  }

  close(): void {
    this.#agent.destroy();
  }

  #request(method: string, path: string, body?: readonly Uint8Array[], headers: Record<string, string | number> = {}): Promise<OipResponse> {
    const url = new URL(path.replace(/^\//, ''), this.#base);
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const fail = (reason: string, cause?: unknown) => reject(new EdgeInferError('EI_ACCELERATOR_UNAVAILABLE', [this.where, reason], cause));
      const request = transport.request(
        url,
        {
          method,
          agent: this.#agent,
          headers: { ...this.#headers, ...headers, ...(body ? { 'content-length': body.reduce((sum, chunk) => sum + chunk.byteLength, 0) } : {}) },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            clearTimeout(deadline);
            resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) });
          });
          response.on('error', (error) => fail(messageOf(error), error));
        },
      );
      // The deadline covers the whole exchange, not only idle sockets: a server that trickles bytes hits it too.
      const deadline = setTimeout(() => request.destroy(new Error(`no answer within the deadline of ${this.#timeoutMs} ms`)), this.#timeoutMs);
      request.on('error', (error) => {
        clearTimeout(deadline);
        fail(`${method} ${url.pathname}: ${messageOf(error)}`, error);
      });
      for (const chunk of body ?? []) request.write(chunk);
      request.end();
    });
  }
}

/** The JSON body of a 2xx answer; anything else is the error the server gave. */
export function jsonOf<T>(response: OipResponse, where: string, what: string): T {
  const text = response.body.toString('utf8');
  if (response.status < 200 || response.status >= 300) {
    const code = response.status >= 500 ? 'EI_ACCELERATOR_UNAVAILABLE' : 'EI_ACCELERATOR_REFUSED';
    throw new EdgeInferError(code, [where, `${what} answered ${response.status}: ${serverMessage(text)}`]);
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new EdgeInferError('EI_ACCELERATOR_UNAVAILABLE', [where, `${what} answered with a body that is not JSON`], error);
  }
}

function serverMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (parsed.error !== undefined) return typeof parsed.error === 'string' ? parsed.error : JSON.stringify(parsed.error);
  } catch {
    // not JSON: the text as it came, cut short
  }
  return text.slice(0, 200) || '(empty)';
}
