/**
 * The Dockerfiles: clean under dockerfile-utils' validator (the Docker language server's linter, every rule an
 * error), and built the way the issue asks: multi-stage, production dependencies only, a maintained Node on
 * Debian, ffmpeg, a non-root user in `video` owning the store, a health check on `GET /`, labels. The images
 * themselves are built and run by `npm run test:image`.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dockerfileUtils from 'dockerfile-utils';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const pkg = JSON.parse(read('package.json')) as { version: string; engines: { node: string }; scripts: { start: string } };

const DOCKERFILES = ['Dockerfile.amd64', 'Dockerfile.arm64v8', 'Dockerfile.amd64.gpu'];
const STRICT = Object.fromEntries(
  ['deprecatedMaintainer', 'directiveCasing', 'emptyContinuationLine', 'instructionCasing', 'instructionCmdMultiple', 'instructionEntrypointMultiple', 'instructionHealthcheckMultiple', 'instructionJSONInSingleQuotes', 'instructionWorkdirRelative'].map((rule) => [rule, dockerfileUtils.ValidationSeverity.ERROR]),
);

interface Instruction {
  keyword: string;
  args: string;
}

/** Instructions with their continuation lines joined, comments dropped, split into stages at each FROM. */
function stagesOf(text: string): Instruction[][] {
  const stages: Instruction[][] = [];
  const logical = text.replace(/\\\n/g, ' ').split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  for (const line of logical) {
    const [keyword, ...rest] = line.split(/\s+/);
    const instruction = { keyword: keyword!.toUpperCase(), args: rest.join(' ') };
    if (instruction.keyword === 'FROM') stages.push([]);
    stages.at(-1)?.push(instruction);
  }
  return stages;
}

const argsOf = (stage: Instruction[], keyword: string) => stage.filter((i) => i.keyword === keyword).map((i) => i.args);

test('the linter finds a broken Dockerfile (so its silence below means something)', (t) => {
  const problems = dockerfileUtils.validate('from node:22\nWORKDIR app\nCMD ["a"]\nCMD ["b"]\n', STRICT);
  t.true(problems.length >= 3);
});

for (const file of DOCKERFILES) {
  test(`${file} lints clean`, (t) => {
    t.deepEqual(dockerfileUtils.validate(read(file), STRICT), []);
  });

  test(`${file}: build with dev dependencies, run with production ones as a non-root user in video`, (t) => {
    const stages = stagesOf(read(file));
    const run = stages.at(-1)!;
    const build = stages.filter((stage) => argsOf(stage, 'RUN').some((r) => /^npm run build$/.test(r)));
    t.is(build.length, 1, 'one stage compiles the TypeScript and the WebAssembly (npm run build: asc, then tsc)');
    t.true(argsOf(build[0]!, 'COPY').includes('wasm ./wasm'), 'the WebAssembly sources are in the build stage');
    t.regex(argsOf(build[0]!, 'FROM')[0]!, /^--platform=\$BUILDPLATFORM node:(22|24)-bookworm-slim AS \w+$/);
    // node_modules in the image come only from a stage that installed without dev dependencies.
    const copies = argsOf(run, 'COPY').filter((c) => c.startsWith('--from='));
    const modulesFrom = copies.find((c) => c.includes('node_modules'))!.match(/--from=(\S+)/)![1];
    const dependencies = stages.find((stage) => argsOf(stage, 'FROM')[0]!.endsWith(` AS ${modulesFrom}`))!;
    t.true(argsOf(dependencies, 'RUN').some((r) => /npm ci --omit=dev/.test(r)));
    t.false(copies.some((c) => c.includes('/build/src') || c.includes('tsconfig')), 'no sources in the image');

    const installs = argsOf(run, 'RUN').join(' ');
    t.regex(installs, /apt-get install -y --no-install-recommends ffmpeg/);
    t.regex(installs, /rm -rf \/var\/lib\/apt\/lists/);
    const user = argsOf(run, 'USER')[0]!;
    t.notRegex(user, /^(root|0)(:|$)/);
    t.regex(installs, new RegExp(`useradd [^&]*--groups video[^&]* ${user}\\b`));
    const env = Object.fromEntries(argsOf(run, 'ENV').join(' ').split(/\s+/).map((pair) => pair.split('=') as [string, string]));
    t.regex(installs, new RegExp(`chown ${user}:${user} ${env.EDGE_INFER_STORE}`), 'the user owns the store');
    t.deepEqual(argsOf(run, 'EXPOSE'), [env.PORT]);
    t.deepEqual(argsOf(run, 'STOPSIGNAL'), ['SIGTERM']);
    // `edge-infer health`: GET / over HTTPS or HTTP, whichever the module serves (HTTPS on IoT Edge by default).
    t.regex(argsOf(run, 'HEALTHCHECK')[0]!, /CMD \["node", "\/app\/dist\/src\/main\.js", "health"\]/);
    // Node runs with the same flags and malloc setting as `npm start` (README, "Performance": the old generation's floor).
    const start = pkg.scripts.start.match(/^(?:(\w+=\S+) )*node ((?:--\S+ )*)dist\/src\/main\.js$/)!;
    const nodeFlags = start[2]!.trim().split(' ').filter(Boolean);
    t.true(nodeFlags.length > 0, 'npm start gives Node flags');
    t.deepEqual(argsOf(run, 'ENTRYPOINT'), [JSON.stringify(['node', ...nodeFlags, '/app/dist/src/main.js']).replaceAll('","', '", "')]);
    for (const setting of pkg.scripts.start.split(' node ')[0]!.split(' ')) t.true(argsOf(run, 'ENV').join(' ').split(/\s+/).includes(setting), setting);
    const labels = argsOf(run, 'LABEL').join(' ');
    for (const label of ['title', 'description', 'version', 'licenses', 'base.name']) t.true(labels.includes(`org.opencontainers.image.${label}=`), label);
    t.deepEqual(argsOf(run, 'ARG'), [`VERSION=${pkg.version}`]);
  });
}

test('the CPU images run on Node 22 on Debian bookworm; the GPU image on CUDA 12 with cuDNN 9', (t) => {
  t.deepEqual(argsOf(stagesOf(read('Dockerfile.amd64')).at(-1)!, 'FROM'), ['amd64/node:22-bookworm-slim']);
  t.deepEqual(argsOf(stagesOf(read('Dockerfile.arm64v8')).at(-1)!, 'FROM'), ['arm64v8/node:22-bookworm-slim']);
  const gpu = stagesOf(read('Dockerfile.amd64.gpu'));
  t.regex(argsOf(gpu.at(-1)!, 'FROM')[0]!, /^nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-/);
  t.true(argsOf(gpu.at(-1)!, 'COPY').includes('--from=node /usr/local/bin/node /usr/local/bin/node'));
  t.true(gpu.some((stage) => argsOf(stage, 'RUN').some((r) => r.includes('ONNXRUNTIME_NODE_INSTALL=cuda12'))), 'the CUDA provider is installed at build time');
});

test('Dockerfile.arm64v8 is Dockerfile.amd64 with the architecture names swapped', (t) => {
  const swapped = read('Dockerfile.amd64')
    .replace(/Dockerfile\.(amd64|arm64v8)/g, (_m, arch: string) => `Dockerfile.${arch === 'amd64' ? 'arm64v8' : 'amd64'}`)
    .replace(/linux\/amd64/g, 'linux/arm64')
    .replace(/amd64\/node/g, 'arm64v8/node')
    .replace(/--cpu=x64/g, '--cpu=arm64')
    .replace(/linux\/x64/g, 'linux/arm64');
  t.is(read('Dockerfile.arm64v8'), swapped);
});

test('.dockerignore lets in only what the Dockerfiles copy', (t) => {
  const allowed = read('.dockerignore').split('\n').filter((line) => line.startsWith('!')).map((line) => line.slice(1));
  t.is(read('.dockerignore').split('\n').find((line) => line && !line.startsWith('#')), '*', 'everything else is left out');
  const copied = new Set<string>();
  for (const file of DOCKERFILES) {
    for (const stage of stagesOf(read(file))) {
      for (const copy of argsOf(stage, 'COPY').filter((c) => !c.startsWith('--from='))) {
        for (const source of copy.split(/\s+/).slice(0, -1)) copied.add(source);
      }
    }
  }
  t.deepEqual([...copied].sort(), [...allowed].sort());
});

test('package.json engines admit the Node the images run and no Node past its end of life', (t) => {
  const range = pkg.engines.node;
  t.regex(range, /\^22\./, 'Node 22, the images’ runtime');
  t.notRegex(range, /(^|[\s>=^~])(1\d|20)\b/, 'not Node 20 or older: out of maintenance since April 2026');
});
