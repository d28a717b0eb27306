/**
 * A server certificate from the IoT Edge workload API, the way the runtime hands one to a module:
 * `POST /modules/<id>/genid/<generation>/certificate/server` with the name and the wished expiry; the answer
 * holds the key and certificate as PEM and the expiry the runtime granted. The API listens on a unix socket
 * (`unix:///var/run/iotedge/workload.sock`) or on `http://host:port`, as `IOTEDGE_WORKLOADURI` says.
 */
import { request } from 'node:http';
import { X509Certificate } from 'node:crypto';
import { EdgeInferError, messageOf } from '../errors.js';

/** The api-version the IoT SDK speaks to the same API (its IotEdgeAuthenticationProvider). */
export const WORKLOAD_API_VERSION = '2018-06-28';

export interface WorkloadIdentity {
  /** `IOTEDGE_WORKLOADURI`. */
  uri: string;
  /** `IOTEDGE_MODULEID`. */
  moduleId: string;
  /** `IOTEDGE_MODULEGENERATIONID`. */
  generationId: string;
}

export interface ServerCertificate {
  cert: Buffer;
  key: Buffer;
  /** When it stops being valid: the earlier of what the API answered and the certificate's own notAfter. */
  expiresAt: Date;
  serialNumber: string;
}

/** Where a request goes: a socket path, or host and port. */
function endpointOf(uri: string): { socketPath: string } | { host: string; port: number } {
  const url = new URL(uri);
  if (url.protocol === 'unix:') return { socketPath: url.pathname };
  if (url.protocol === 'http:') return { host: url.hostname, port: Number(url.port || 80) };
  throw new Error(`workload URI ${uri} is neither unix:// nor http://`);
}

function post(uri: string, path: string, body: unknown, timeoutMs: number): Promise<{ status: number; text: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      { ...endpointOf(uri), path, method: 'POST', timeout: timeoutMs, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (answer) => {
        let text = '';
        answer.setEncoding('utf8');
        answer.on('data', (chunk: string) => (text += chunk));
        answer.on('end', () => resolve({ status: answer.statusCode ?? 0, text }));
        answer.on('error', reject);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}

/** Reads the answer; anything not shaped as documented (an HSM key reference instead of bytes, say) is refused. */
function readAnswer(text: string): ServerCertificate {
  const answer = JSON.parse(text) as { privateKey?: { bytes?: unknown }; certificate?: unknown; expiration?: unknown };
  const key = answer.privateKey?.bytes;
  if (typeof key !== 'string' || typeof answer.certificate !== 'string') throw new Error('the answer holds no privateKey.bytes and certificate PEM');
  const certificate = new X509Certificate(answer.certificate);
  const granted = typeof answer.expiration === 'string' ? new Date(answer.expiration) : new Date(NaN);
  const notAfter = new Date(certificate.validTo);
  const expiresAt = Number.isNaN(granted.getTime()) || granted > notAfter ? notAfter : granted;
  return { cert: Buffer.from(answer.certificate), key: Buffer.from(key), expiresAt, serialNumber: certificate.serialNumber };
}

export async function requestServerCertificate(identity: WorkloadIdentity, commonName: string, lifetimeMs: number, timeoutMs = 30_000): Promise<ServerCertificate> {
  const path = `/modules/${encodeURIComponent(identity.moduleId)}/genid/${encodeURIComponent(identity.generationId)}/certificate/server?api-version=${WORKLOAD_API_VERSION}`;
  try {
    const { status, text } = await post(identity.uri, path, { commonName, expiration: new Date(Date.now() + lifetimeMs).toISOString() }, timeoutMs);
    if (status !== 200 && status !== 201) throw new Error(`status ${status}: ${text.slice(0, 200)}`);
    return readAnswer(text);
  } catch (error) {
    throw new EdgeInferError('EI_TLS_CERTIFICATE', [identity.uri, messageOf(error)], error);
  }
}
