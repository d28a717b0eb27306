/**
 * Asks the module running on this device over its REST API on loopback: HTTPS where it serves HTTPS (on IoT
 * Edge it does by default), else plain HTTP. The certificate is not checked: it is the module's own, reached on
 * this host, and may name the device rather than 127.0.0.1. A server that speaks plain HTTP fails the TLS
 * handshake before anything is sent, so falling back to HTTP never sends a request twice.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface LocalRequest {
  /** Where the module listens; its `--host` 0.0.0.0 (every address) is asked on 127.0.0.1. */
  host?: string;
  port: number;
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
}

export interface LocalAnswer {
  status: number;
  text: string;
}

export async function askLocalModule(request: LocalRequest): Promise<LocalAnswer> {
  try {
    return await send(request, true);
  } catch (error) {
    if (!isPlainHttpServer(error)) throw error;
    return send(request, false);
  }
}

function send({ host, port, path, method = 'GET', headers = {}, body, timeoutMs = 10_000 }: LocalRequest, tls: boolean): Promise<LocalAnswer> {
  return new Promise((resolve, reject) => {
    const options = { host: !host || host === '0.0.0.0' ? '127.0.0.1' : host, port, path, method, headers, timeout: timeoutMs };
    const onAnswer = (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    };
    const outgoing = tls ? httpsRequest({ ...options, rejectUnauthorized: false }, onAnswer) : httpRequest(options, onAnswer);
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** What a TLS client sees when the server answers its handshake in plain HTTP. */
function isPlainHttpServer(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'EPROTO' || code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ECONNRESET';
}
