#!/usr/bin/env node
/**
 * The entry point: settings → the service (service.ts wires it) → listening → the desired state from a file,
 * the flags or the module twin, and the hub link. The service listens before any model is loaded, so `GET /`
 * answers the liveness probe at once and `/v2/health/ready` turns 200 when the models are active.
 */
import deviceSdk from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';
import { activateCommand } from './cli/activate.js';
import { healthCommand } from './cli/health.js';
import { packCommand } from './cli/pack.js';
import { profileCommand } from './cli/profile.js';
import { promoteCommand } from './cli/promote.js';
import { publishCommand } from './cli/publish.js';
import { watchDesiredFile } from './config/desired-file.js';
import type { DesiredState } from './config/desired-state.js';
import { parseSettings, USAGE, type Settings } from './config/settings.js';
import { isEdgeInferError, messageOf } from './errors.js';
import { createLogger } from './log.js';
import { installLastResort } from './last-resort.js';
import { HubLink } from './hub/hub-link.js';
import { ReportedProperties } from './hub/reported.js';
import { createService } from './service.js';
import { startServerTls } from './server/tls.js';
import type { OutputMessage } from './sources/result-message.js';

/** IoT Edge stops a module with SIGTERM and kills it 10 s later (a bit less here, to finish cleanly). */
const SHUTDOWN_GRACE_MS = 8000;

/** A module client for the mode: the IoT Edge runtime's environment, or a module connection string. */
async function createModuleClient(settings: Settings): Promise<deviceSdk.ModuleClient> {
  if (settings.mode === 'iot-edge') return deviceSdk.ModuleClient.fromEnvironment(mqttTransport.Mqtt);
  const client = deviceSdk.ModuleClient.fromConnectionString(settings.connectionString!, mqttTransport.Mqtt);
  if (settings.ca) await client.setOptions({ ca: settings.ca.toString('utf8') });
  return client;
}

/** The desired state of `--model`, or of nothing (the bundled detector); `--desired` is watched instead. */
function desiredFromFlags(settings: Settings): DesiredState {
  if (!settings.model) return { models: {}, cameras: {}, output: {} };
  const { name, uri, sha256 } = settings.model;
  const slot = { version: '1', uri, ...(sha256 ? { sha256 } : {}), target: settings.target, ...(settings.threads ? { threads: settings.threads } : {}) };
  return { models: { [name]: slot }, cameras: {}, output: {} };
}

/** Sub-commands: `edge-infer NAME ...` runs one and exits with its code instead of serving. */
const COMMANDS: Record<string, (argv: string[], env: NodeJS.ProcessEnv, out: (line: string) => void) => Promise<number>> = {
  activate: activateCommand,
  health: healthCommand,
  pack: packCommand,
  profile: profileCommand,
  promote: promoteCommand,
  publish: publishCommand,
};

async function main(): Promise<void> {
  const command = COMMANDS[process.argv[2] ?? ''];
  if (command) {
    process.exitCode = await command(process.argv.slice(3), process.env, (line) => process.stdout.write(`${line}\n`));
    return;
  }
  let settings: Settings | 'help';
  try {
    settings = parseSettings(process.argv.slice(2), process.env);
  } catch (error) {
    process.stderr.write(`edge-infer: ${messageOf(error)}\n`);
    process.exit(2);
  }
  if (settings === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }

  const log = createLogger(settings.logLevel);
  installLastResort(log);
  // The certificate comes before the service: fastify builds its HTTPS server with it.
  const tls = await startServerTls(settings, log);
  let hub: HubLink | undefined;
  const service = await createService({ ...settings, tls: tls.credentials }, log, {
    // Cameras start from the twin in these modes, so the hub link exists by the time a result is sent.
    ...(settings.mode !== 'standalone' ? { publish: (message: OutputMessage) => hub!.send(message) } : {}),
  });
  const { status, metrics, registry, reconciler, app, applyDesired } = service;

  let stopWatching = () => {};
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: finishing requests in flight');
    setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS).unref();
    stopWatching();
    tls.stop();
    service.cameras.stop();
    await hub?.stop();
    await service.close();
    log.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  await app.listen({ port: settings.port, host: settings.host });
  tls.serve(app.server);
  // What served last time serves again first, from disk; then the desired state moves it on.
  await reconciler.restore();
  const desiredFile = settings.desired;
  if (settings.mode !== 'standalone') {
    hub = new HubLink({
      createClient: () => createModuleClient(settings),
      onDesired: (state) => {
        status.setDesired('twin', typeof state === 'string' ? state : null);
        if (typeof state === 'string') log.error({ code: 'EI_DESIRED_INVALID' }, state);
        else applyDesired(state);
      },
      reported: new ReportedProperties(status, log),
      status,
      keepAliveSeconds: settings.hub.keepAliveSeconds,
      twinResyncMs: settings.hub.twinResyncSeconds * 1000,
      methods: { registry, status, defaultModel: () => reconciler.defaultModel(), activate: (name, version) => reconciler.activate(name, version), promote: (name, by) => reconciler.promote(name, by) },
      log,
      onAnswered: (output, code) => metrics.messages.inc({ output, code: code ?? '' }),
      onReconnect: (cause) => metrics.hubReconnects.inc({ cause }),
      onOutputDropped: (output) => metrics.outputsDropped.inc({ output }),
    });
    status.setDesired('twin', null);
    hub.start();
  } else if (desiredFile) {
    stopWatching = await watchDesiredFile(desiredFile, {
      onState: applyDesired,
      onProblem: (problem) => {
        status.setDesired(`file:${desiredFile}`, problem);
        if (problem) log.error({ code: 'EI_DESIRED_INVALID' }, problem);
      },
    });
  } else {
    status.setDesired(settings.model ? 'flags' : 'none', null);
    applyDesired(desiredFromFlags(settings));
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`edge-infer: ${isEdgeInferError(error) ? `${error.code}: ` : ''}${messageOf(error)}\n`);
  process.exit(1);
});
