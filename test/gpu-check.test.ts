/**
 * scripts/gpu-check.mjs on a machine without a GPU (this one, and CI's): it must still run end to end, say plainly
 * that the CUDA provider is missing and why, fail the GPU checks and exit 1, while the comparisons that need no GPU
 * (the module answering the same on both targets, which here are both the CPU) pass. It ran on a real GPU by hand
 * (README, Execution targets, "Checked on a real GPU"); this keeps its plumbing (status fields, profile's JSON)
 * from rotting between such runs.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { photoPath } from './support/fixtures.js';

test('without a GPU the check names the missing CUDA provider, fails the GPU checks and exits 1', async (t) => {
  const run = promisify(execFile);
  const failure = await run(process.execPath, ['scripts/gpu-check.mjs', '--image', photoPath(1), '--profile-seconds', '0.5'], { maxBuffer: 1 << 24, timeout: 240_000 }).then(
    () => undefined,
    (error: { code?: number; stdout?: string }) => error,
  );
  t.is(failure?.code, 1, 'exit status 1 when a check fails');
  const lines = (failure?.stdout ?? '').split('\n');
  const line = (name: string) => lines.find((l) => l.includes(name)) ?? '';
  t.regex(line('the GPU probe finds the CUDA provider'), /^FAIL .*the CUDA provider did not start/);
  t.regex(line('the bundled model runs on the GPU'), /^FAIL .*"target":"cpu"/);
  t.regex(line('the photo gives the same detections'), /^PASS .*"gpu":3,"cpu":3/);
  t.regex(line('OIP outputs agree'), /^PASS /);
  t.regex(line('a slot with target gpu and fallback none'), /^FAIL .*EI_TARGET_UNAVAILABLE/);
  t.regex(line('a hot swap on the GPU'), /^FAIL .*not tried/);
  t.regex(line('edge-infer profile runs on the GPU'), /^FAIL .*"target":"cpu"/);
  t.true(lines.includes('2 passed, 5 failed'), lines.slice(-3).join('\n'));
});
