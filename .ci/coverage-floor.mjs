// The coverage floor in .c8rc.json only rises. `npx c8 check-coverage` in .ci/run fails when coverage drops below the
// floor; this check fails when the floor itself is below its highest in any commit, which would let coverage
// drop unnoticed. It also says when the run just measured is a whole point above the floor, so the floor can be
// raised to it (rounded down) in the same change that earned it.
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';

const config = '.c8rc.json';
const metrics = ['lines', 'statements', 'functions', 'branches'];

const floorsOf = (text) => {
  const parsed = JSON.parse(text);
  return Object.fromEntries(metrics.map((metric) => [metric, Number(parsed[metric] ?? 0)]));
};
const git = (...args) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
const committed = (revision) => {
  try {
    return floorsOf(git('show', `${revision}:${config}`));
  } catch {
    return undefined; // a commit that removed the file
  }
};

// The floor now (working tree) against the highest each metric ever had in a commit: a floor lowered once and
// raised back above its old height passes again.
const current = floorsOf(readFileSync(config, 'utf8'));
const highest = Object.fromEntries(metrics.map((metric) => [metric, { floor: 0, commit: '' }]));
for (const commit of git('log', '--format=%H', '--', config).split('\n').filter(Boolean)) {
  const floors = committed(commit);
  for (const metric of metrics) {
    if (floors && floors[metric] > highest[metric].floor) highest[metric] = { floor: floors[metric], commit: commit.slice(0, 10) };
  }
}
const lowered = metrics
  .filter((metric) => current[metric] < highest[metric].floor)
  .map((metric) => `${metric} ${current[metric]}, below the ${highest[metric].floor} of commit ${highest[metric].commit}`);

const summaryFile = 'coverage/coverage-summary.json';
if (existsSync(summaryFile)) {
  const total = JSON.parse(readFileSync(summaryFile, 'utf8')).total;
  const measured = metrics.map((metric) => `${metric} ${total[metric].pct}% (floor ${current[metric]})`);
  console.log(`coverage: ${measured.join(', ')}`);
  const raise = metrics.filter((metric) => Math.floor(total[metric].pct) > current[metric]);
  if (raise.length > 0) {
    const to = raise.map((metric) => `"${metric}": ${Math.floor(total[metric].pct)}`).join(', ');
    console.log(`coverage is a point or more above its floor: raise ${to} in ${config}`);
  }
}

if (lowered.length > 0) {
  console.log(`coverage floor lowered (it may only rise):\n  ${lowered.join('\n  ')}`);
  process.exit(1);
}
console.log('coverage floor: at its highest');
