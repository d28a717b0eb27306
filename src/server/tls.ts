/**
 * Where the REST API's certificate comes from (`--tls auto|workload|files|off`), and keeping it fresh without a
 * restart: a workload certificate is renewed at 80% of its lifetime, certificate files are re-read when they
 * change, and either is swapped into the listening server with `setSecureContext`, so connections made after
 * the swap see the new certificate and those already open go on with the old one.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Server as HttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.js';
import { EdgeInferError, messageOf } from '../errors.js';
import { onFileChanges } from './file-changes.js';
import { requestServerCertificate, type ServerCertificate } from './workload-certificate.js';

/** What the API answers for; the runtime may grant less (its own cap), and the answer's expiry is what counts. */
export const WORKLOAD_CERTIFICATE_LIFETIME_MS = 30 * 24 * 3600_000;
/** Renewed when this share of its lifetime has passed, leaving room for retries before it expires. */
export const RENEW_AT_SHARE = 0.8;
/** A failed renewal is tried again after this long at most (sooner when the certificate is about to expire). */
export const RENEW_RETRY_MS = 60_000;
/** How often certificate files are checked for a change. */
const FILES_POLL_MS = 1000;
/** setTimeout's longest delay; a later renewal is reached in steps. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

export type TlsSource = { kind: 'off' | 'files' | 'workload'; why: string };

/** The source `--tls` and the environment give; a mode that cannot be met is a setting error. */
export function chooseTlsSource(settings: Pick<Settings, 'tlsMode' | 'tls' | 'workload'>): TlsSource {
  const { tlsMode, tls, workload } = settings;
  if (tlsMode === 'off') return { kind: 'off', why: '--tls off' };
  if (tlsMode === 'files' || (tlsMode === 'auto' && tls)) {
    if (!tls) throw new EdgeInferError('EI_CONFIG_INVALID', ['--tls files needs --tls-cert and --tls-key']);
    return { kind: 'files', why: '--tls-cert and --tls-key' };
  }
  if (workload) return { kind: 'workload', why: `the IoT Edge workload API at ${workload.uri}` };
  if (tlsMode === 'workload') throw new EdgeInferError('EI_CONFIG_INVALID', ['--tls workload needs the IoT Edge runtime (IOTEDGE_WORKLOADURI, IOTEDGE_MODULEID, IOTEDGE_MODULEGENERATIONID)']);
  return { kind: 'off', why: 'no certificate source: no --tls-cert/--tls-key and not on IoT Edge' };
}

/** When to renew a certificate fetched at `fetchedAt`. */
export function renewalTime(certificate: Pick<ServerCertificate, 'expiresAt'>, fetchedAt: number): number {
  return fetchedAt + RENEW_AT_SHARE * Math.max(0, certificate.expiresAt.getTime() - fetchedAt);
}

export interface ServerTls {
  /** The certificate and key to build the server with; none for plain HTTP. */
  credentials?: { cert: Buffer; key: Buffer };
  /** Starts keeping the listening server's certificate fresh. */
  serve(server: unknown): void;
  stop(): void;
}

/** Decides the source, says it in the log, and fetches the first workload certificate (a failure stops start-up). */
export async function startServerTls(settings: Settings, log: Logger): Promise<ServerTls> {
  const source = chooseTlsSource(settings);
  if (source.kind === 'off') {
    log.info({ tls: 'off' }, `the REST API serves plain HTTP (${source.why})`);
    return { serve: () => undefined, stop: () => undefined };
  }
  if (source.kind === 'files') {
    log.info({ tls: 'files', serial: new X509Certificate(settings.tls!.cert).serialNumber }, `the REST API serves HTTPS with ${source.why}, re-read when they change`);
    return filesTls(settings, log);
  }
  const tls = await workloadTls(settings, log);
  log.info({ tls: 'workload', commonName: settings.tlsName, ...tls.describe() }, `the REST API serves HTTPS with a certificate from ${source.why}`);
  return tls;
}

/** Certificate files, watched: a new pair is swapped in once both halves match (a half-replaced pair waits). */
function filesTls(settings: Settings, log: Logger): ServerTls {
  const files = settings.tlsFiles!;
  let stopWatching = () => {};
  return {
    credentials: settings.tls!,
    serve: (server) => {
      stopWatching = onFileChanges([files.cert, files.key], async () => {
        try {
          const next = { cert: await readFile(files.cert), key: await readFile(files.key) };
          createSecureContext(next);
          (server as HttpsServer).setSecureContext(next);
          log.info({ serial: new X509Certificate(next.cert).serialNumber }, 'the REST API certificate files changed; new connections get them');
        } catch (error) {
          log.warn({ files }, `the certificate files cannot be used yet (${messageOf(error)}); the certificate in force stays`);
        }
      }, FILES_POLL_MS);
    },
    stop: () => stopWatching(),
  };
}

async function workloadTls(settings: Settings, log: Logger): Promise<ServerTls & { describe(): Record<string, string> }> {
  const fetch = () => requestServerCertificate(settings.workload!, settings.tlsName, WORKLOAD_CERTIFICATE_LIFETIME_MS);
  let current = await fetch();
  let fetchedAt = Date.now();
  const describe = () => ({ serial: current.serialNumber, expires: current.expiresAt.toISOString(), renews: new Date(renewalTime(current, fetchedAt)).toISOString() });
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = (server: HttpsServer, at: number) => {
    if (stopped) return;
    timer = setTimeout(() => void (Date.now() < at ? schedule(server, at) : renew(server)), Math.min(LONGEST_TIMER_MS, Math.max(0, at - Date.now())));
    timer.unref();
  };
  const renew = async (server: HttpsServer) => {
    try {
      const next = await fetch();
      if (stopped) return;
      server.setSecureContext({ cert: next.cert, key: next.key });
      current = next;
      fetchedAt = Date.now();
      log.info(describe(), 'the REST API certificate was renewed; new connections get it');
      schedule(server, renewalTime(current, fetchedAt));
    } catch (error) {
      const retry = Math.min(RENEW_RETRY_MS, Math.max(1000, (current.expiresAt.getTime() - Date.now()) / 10));
      log.error({ err: error, code: (error as EdgeInferError).code, expires: current.expiresAt.toISOString(), retryMs: retry }, `renewing the REST API certificate failed: ${messageOf(error)}; the current one serves until it expires`);
      schedule(server, Date.now() + retry);
    }
  };
  return {
    credentials: { cert: current.cert, key: current.key },
    describe,
    serve: (server) => schedule(server as HttpsServer, renewalTime(current, fetchedAt)),
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
