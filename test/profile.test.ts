/**
 * `edge-infer profile`: the figures it prints for the bundled model and for an entry-script package, and
 * recommendations that follow from those figures by the documented arithmetic (not from this machine's speed).
 */
import test from 'ava';
import { recommend, type ProfileFigures } from '../src/cli/profile.js';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { ocrClassifierPath } from './support/fixtures.js';
import { makePackageFolder } from './support/packages.js';
import { runProgram } from './support/program.js';

const level = (concurrency: number, throughput: number, cpuCores: number) => ({ concurrency, requests: 100, throughput, p50Ms: 10, p99Ms: 20, cpuCores });

test('the arithmetic: threads from one client, NanoCpus from the best level, Memory from the peak', (t) => {
  const advice = recommend({ cores: 4, peakRssMiB: 150.2, levels: [level(1, 30, 1.4), level(2, 45, 1.9), level(4, 44, 2.2)] });
  t.is(advice.threads, 1, '1.4 cores busy at one client → 1 thread');
  t.is(advice.nanoCpus, 2e9, 'best throughput at 2 in flight used 1.9 cores → 2 cores');
  t.is(advice.memoryBytes, 320 * 1024 * 1024, '150.2 MiB × 2 = 300.4 → 320 MiB');
  t.regex(advice.why.nanoCpus, /45\.0\/s with 2 in flight, used 1\.90 cores/);
  // Never more threads than cores, never fewer than one, never less than half a core.
  const small = recommend({ cores: 2, peakRssMiB: 10, levels: [level(1, 5, 3.7)] });
  t.is(small.threads, 2);
  t.is(small.memoryBytes, 64 * 1024 * 1024);
  t.is(recommend({ cores: 2, peakRssMiB: 10, levels: [level(1, 5, 0.1)] }).nanoCpus, 0.5e9);
});

test('profiles the bundled model: figures per level, and the recommendation is the one its figures give', async (t) => {
  const { code, stdout } = await runProgram(['profile', BUNDLED_MODEL.uri, '--duration', '0.5', '--concurrency', '3', '--spin-wait', 'on', '--json']);
  t.is(code, 0, stdout);
  const printed = JSON.parse(stdout) as ProfileFigures & { recommendation: ReturnType<typeof recommend> };
  t.deepEqual(printed.levels.map((l) => l.concurrency), [1, 2, 3]);
  for (const l of printed.levels) {
    t.true(l.requests > 0 && l.throughput > 0 && l.p50Ms > 0 && l.p99Ms >= l.p50Ms && l.cpuCores > 0);
  }
  t.true(printed.peakRssMiB > 20);
  t.like(printed.target, { target: 'cpu', requested: 'cpu' });
  t.true(printed.spinWait, 'measured with the threads spinning, as asked');
  t.deepEqual(printed.recommendation, recommend(printed));
});

test('profiles an entry-script package on its inputSample, in words', async (t) => {
  const folder = await makePackageFolder({
    copy: { 'cls.onnx': ocrClassifierPath },
    write: {
      'edge-infer.json': { inputSample: { text: 'anything' } },
      'score.mjs': `export async function run(input, ctx) {
  const outputs = await ctx.model.run({ x: { type: 'float32', dims: [1, 3, 48, 192], data: new Float32Array(3 * 48 * 192) } });
  return { outputs: Object.keys(outputs).length };
}`,
    },
  });
  const { code, stdout, stderr } = await runProgram(['profile', folder, '--duration', '0.3', '--concurrency', '2']);
  t.is(code, 0, stdout);
  t.regex(stdout, /cls\.onnx on cpu; input: the package inputSample; ONNX Runtime's threads sleep between runs \(--spin-wait off\)/);
  t.regex(stdout, /clients\s+req\/s\s+p50 ms\s+p99 ms\s+cores\n\s+1\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\n\s+2\s/);
  t.regex(stdout, /recommended createOptions: \{"HostConfig":\{"Memory":\d+,"NanoCpus":\d+\}\}/);
  t.regex(stdout, /recommended threads .*: \d+/);
  t.regex(stderr, /measuring 2 clients for 0\.3 s/, 'a progress line while it runs');
});

test('a bad option says what is wrong and exits 2', async (t) => {
  const { code, stdout } = await runProgram(['profile', BUNDLED_MODEL.uri, '--target', 'tpu']);
  t.is(code, 2);
  t.regex(stdout, /--target must be cpu, gpu or fpga/);
  const spin = await runProgram(['profile', BUNDLED_MODEL.uri, '--spin-wait', 'yes']);
  t.is(spin.code, 2);
  t.regex(spin.stdout, /--spin-wait must be on or off, not "yes"/);
});
