/**
 * The IoT Edge deployment templates, expanded as the IoT Edge dev tooling expands them (`${MODULES.x}` from
 * modules/x/module.json, `$VAR` from the environment, createOptions serialised and split into 512-character
 * twin values), checked against what the module itself accepts: its outputs, its settings, its desired state.
 */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkCamera, checkSlot, readDesiredState } from '../src/config/desired-state.js';
import { parseSettings } from '../src/config/settings.js';
import { DesiredTwin } from '../src/hub/desired-twin.js';
import { InputScorer } from '../src/hub/messages.js';
import { createLogger } from '../src/log.js';
import { ModelRegistry } from '../src/models/registry.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const readJson = (file: string) => JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) as Record<string, any>;

/** edgeAgent keeps each twin value to 512 characters; the tooling spreads createOptions over at most 8. */
const TWIN_VALUE_MAX = 512;
const CREATE_OPTIONS_PARTS_MAX = 8;
const ENV = { CONTAINER_REGISTRY_SERVER: 'example.azurecr.io', CONTAINER_REGISTRY_USERNAME: 'user', CONTAINER_REGISTRY_PASSWORD: 'secret' };

/** `${MODULES.name}` → the amd64 image, `${MODULES.name.platform}` → that platform's, as module.json names them. */
function expandModules(text: string): string {
  return text.replace(/\$\{MODULES\.([A-Za-z0-9_-]+)(?:\.([^}]+))?\}/g, (_match, name: string, platform = 'amd64') => {
    const { image } = readJson(`modules/${name}/module.json`);
    if (!image.tag.platforms[platform]) throw new Error(`module ${name} has no platform ${platform}`);
    return `${image.repository}:${image.tag.version}-${platform}`;
  });
}

function expandVariables(text: string): string {
  return text.replace(/\$\{?([A-Z][A-Z0-9_]*)\}?/g, (match, name: keyof typeof ENV) => ENV[name] ?? match);
}

/** createOptions as the tooling writes them: a JSON string in `createOptions`, `createOptions01`, ... */
function splitCreateOptions(options: unknown): Record<string, string> {
  const text = JSON.stringify(options);
  const parts: Record<string, string> = {};
  for (let i = 0; i * TWIN_VALUE_MAX < text.length || i === 0; i++) {
    parts[i === 0 ? 'createOptions' : `createOptions${String(i).padStart(2, '0')}`] = text.slice(i * TWIN_VALUE_MAX, (i + 1) * TWIN_VALUE_MAX);
  }
  if (Object.keys(parts).length > CREATE_OPTIONS_PARTS_MAX) throw new Error(`createOptions of ${text.length} characters need more than ${CREATE_OPTIONS_PARTS_MAX} parts`);
  return parts;
}

/** The modules of an edgeAgent section: a full deployment's `properties.desired`, or a layer's sub-paths. */
function modulesOf(edgeAgent: Record<string, any>): Record<string, any> {
  const full = edgeAgent['properties.desired'];
  if (full) return { ...full.systemModules, ...full.modules };
  const layered = Object.entries(edgeAgent).filter(([key]) => key.startsWith('properties.desired.modules.'));
  return Object.fromEntries(layered.map(([key, module]) => [key.slice('properties.desired.modules.'.length), module]));
}

/** A template turned into the deployment manifest the tooling would write. */
function generate(template: string): Record<string, any> {
  const manifest = JSON.parse(expandVariables(expandModules(readFileSync(path.join(ROOT, template), 'utf8'))));
  delete manifest['$schema-template'];
  for (const module of Object.values(modulesOf(manifest.modulesContent.$edgeAgent))) {
    const { createOptions, ...settings } = module.settings;
    module.settings = { ...settings, ...splitCreateOptions(createOptions ?? {}) };
  }
  return manifest;
}

/** The createOptions object again, from its parts. */
function joinCreateOptions(settings: Record<string, string>): Record<string, any> {
  const keys = Object.keys(settings).filter((key) => key.startsWith('createOptions')).sort();
  return JSON.parse(keys.map((key) => settings[key]).join(''));
}

/** The outputs the module sends on, read from its code: results by default, errors for what cannot be scored. */
async function moduleOutputs(): Promise<string[]> {
  const outputs = [new DesiredTwin().outputName()];
  const registry = new ModelRegistry(() => undefined);
  const sent = new Promise<string>((resolve) => {
    const scorer = new InputScorer({
      registry,
      defaultModel: () => undefined,
      outputName: () => outputs[0]!,
      send: async (message) => resolve(message.output),
      complete: async () => undefined,
      log: createLogger('silent'),
    });
    scorer.take('score', { data: Buffer.from('{}'), properties: { getValue: () => undefined } });
  });
  outputs.push(await sent);
  registry.close();
  return outputs;
}

const pkg = readJson('package.json');
const moduleJson = readJson('modules/edge-infer/module.json');

test('module.json names the repository, the package version and a Dockerfile per platform', (t) => {
  t.is(moduleJson.image.repository, '${CONTAINER_REGISTRY_SERVER}/edge-infer');
  t.is(moduleJson.image.tag.version, pkg.version);
  t.deepEqual(Object.keys(moduleJson.image.tag.platforms).sort(), ['amd64', 'amd64.gpu', 'arm64v8']);
  const moduleDir = path.join(ROOT, 'modules/edge-infer');
  for (const dockerfile of Object.values<string>(moduleJson.image.tag.platforms)) t.true(existsSync(path.join(moduleDir, dockerfile)), dockerfile);
  t.is(path.resolve(moduleDir, moduleJson.image.contextPath), path.resolve(ROOT));
});

test('the images expand as the dev tooling expands them', (t) => {
  const manifest = generate('deployment.template.json');
  t.is(manifest.modulesContent.$edgeAgent['properties.desired'].modules['edge-infer'].settings.image, `example.azurecr.io/edge-infer:${pkg.version}-amd64`);
  t.is(expandVariables(expandModules('${MODULES.edge-infer.arm64v8}')), `example.azurecr.io/edge-infer:${pkg.version}-arm64v8`);
  const gpu = generate('deployment.gpu.template.json');
  t.is(gpu.modulesContent.$edgeAgent['properties.desired.modules.edge-infer'].settings.image, `example.azurecr.io/edge-infer:${pkg.version}-amd64.gpu`);
  t.is(manifest.modulesContent.$edgeAgent['properties.desired'].runtime.settings.registryCredentials.edgeinfer.address, 'example.azurecr.io');
});

test('the runtime is IoT Edge 1.5 with the schemas the dev tooling writes', (t) => {
  const { $edgeAgent, $edgeHub } = generate('deployment.template.json').modulesContent;
  const agent = $edgeAgent['properties.desired'];
  t.is(agent.schemaVersion, '1.1');
  t.is($edgeHub['properties.desired'].schemaVersion, '1.2');
  t.is(agent.systemModules.edgeAgent.settings.image, 'mcr.microsoft.com/azureiotedge-agent:1.5');
  t.is(agent.systemModules.edgeHub.settings.image, 'mcr.microsoft.com/azureiotedge-hub:1.5');
  const module = agent.modules['edge-infer'];
  t.like(module, { type: 'docker', status: 'running', restartPolicy: 'always' });
});

for (const template of ['deployment.template.json', 'deployment.gpu.template.json']) {
  test(`${template}: every createOptions fits the twin in at most ${CREATE_OPTIONS_PARTS_MAX} parts and reads back whole`, (t) => {
    const manifest = generate(template);
    const source = JSON.parse(readFileSync(path.join(ROOT, template), 'utf8'));
    const sourceModules = modulesOf(source.modulesContent.$edgeAgent);
    for (const [name, module] of Object.entries(modulesOf(manifest.modulesContent.$edgeAgent))) {
      const parts = Object.entries<string>(module.settings).filter(([key]) => key.startsWith('createOptions'));
      t.true(parts.length >= 1 && parts.length <= CREATE_OPTIONS_PARTS_MAX, name);
      for (const [key, value] of parts) t.true(value.length <= TWIN_VALUE_MAX, `${name}.${key}`);
      t.deepEqual(joinCreateOptions(module.settings), sourceModules[name].settings.createOptions ?? {});
    }
  });
}

test('the module publishes its port, keeps its store on the host, maps a camera and is limited', (t) => {
  const module = generate('deployment.template.json').modulesContent.$edgeAgent['properties.desired'].modules['edge-infer'];
  const options = joinCreateOptions(module.settings);
  const env = Object.fromEntries(Object.entries<{ value: string }>(module.env).map(([key, { value }]) => [key, value]));
  // The env is what the module's own settings accept, and the store it names is a host folder.
  const settings = parseSettings([], env);
  t.not(settings, 'help');
  if (settings === 'help') return;
  t.deepEqual(options.HostConfig.PortBindings[`${settings.port}/tcp`], [{ HostPort: String(settings.port) }]);
  t.truthy(options.ExposedPorts[`${settings.port}/tcp`]);
  t.true(options.HostConfig.Binds.some((bind: string) => bind.split(':')[1] === settings.store), 'the store is a host folder');
  t.deepEqual(options.HostConfig.Devices.map((d: { PathInContainer: string }) => d.PathInContainer), ['/dev/video0']);
  t.true(options.HostConfig.Memory > 0 && options.HostConfig.Memory === options.HostConfig.MemorySwap);
  t.true(options.HostConfig.NanoCpus > 0);
  t.is(settings.threads, options.HostConfig.NanoCpus / 1e9, 'ONNX Runtime threads match the CPU limit');
  // Keys come from a file mounted read-only from the host, never as a literal in the manifest.
  t.false('EDGE_INFER_KEYS' in env);
  const keysFile = options.Cmd[options.Cmd.indexOf('--keys-file') + 1] as string;
  t.true(
    options.HostConfig.Binds.some((bind: string) => {
      const [, inside, mode] = bind.split(':');
      return mode === 'ro' && keysFile.startsWith(`${inside}/`);
    }),
    'the keys file lies in a read-only host folder',
  );
});

test('the routes name outputs the module sends on, to $upstream', async (t) => {
  const outputs = await moduleOutputs();
  t.deepEqual(outputs, ['results', 'errors']);
  const routes = Object.values<string>(generate('deployment.template.json').modulesContent.$edgeHub['properties.desired'].routes);
  const routed = routes.map((route) => /^FROM \/messages\/modules\/edge-infer\/outputs\/([^ ]+) INTO \$upstream$/.exec(route)?.[1]);
  t.deepEqual(routed.sort(), [...outputs].sort());
});

test("the module's desired properties pass its own desired-state validation", (t) => {
  const desired = generate('deployment.template.json').modulesContent['edge-infer']['properties.desired'];
  const state = readDesiredState(desired);
  if (typeof state === 'string') return t.fail(state);
  t.deepEqual(Object.keys(state.models), ['face']);
  for (const [name, slot] of Object.entries(state.models)) t.is(typeof checkSlot(name, slot), 'object', String(checkSlot(name, slot)));
  t.true(Object.keys(state.cameras).length > 0);
  for (const [id, spec] of Object.entries(state.cameras)) t.is(typeof checkCamera(id, spec), 'object', String(checkCamera(id, spec)));
  t.is(state.defaultModel, 'face');
});

test('the GPU layer asks for the GPUs, runs the model there, and otherwise matches the base module', (t) => {
  const layer = generate('deployment.gpu.template.json').modulesContent;
  const base = generate('deployment.template.json').modulesContent.$edgeAgent['properties.desired'].modules['edge-infer'];
  const gpu = layer.$edgeAgent['properties.desired.modules.edge-infer'];
  const options = joinCreateOptions(gpu.settings);
  const baseOptions = joinCreateOptions(base.settings);
  t.deepEqual(options.HostConfig.DeviceRequests, [{ Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] }]);
  for (const key of ['Binds', 'PortBindings', 'Devices', 'LogConfig']) t.deepEqual(options.HostConfig[key], baseOptions.HostConfig[key], key);
  t.deepEqual(options.Cmd, baseOptions.Cmd);
  const settings = parseSettings([], Object.fromEntries(Object.entries<{ value: string }>(gpu.env).map(([key, { value }]) => [key, value])));
  t.like(settings, { target: 'gpu' });
  // A layer must set a sub-path of the desired properties: `properties.desired` itself would overwrite the base.
  const paths = Object.keys(layer['edge-infer']);
  t.deepEqual(paths, ['properties.desired.models.face']);
  const slot = checkSlot('face', layer['edge-infer']['properties.desired.models.face']);
  if (typeof slot === 'string') return t.fail(slot);
  t.is(slot.target, 'gpu');
});
