// The coverage floor in .c8rc.json only rises. `c8 ava` (npm test) already fails when coverage drops below the
// floor; this check fails when a commit (or the working tree) lowers the floor itself, which would let coverage
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
    return undefined; // the file did not exist there, or the clone is too shallow to see that commit's parent
  }
};

const lowered = [];
const compare = (label, before, after) => {
  if (!before || !after) return;
  for (const metric of metrics) {
    if (after[metric] < before[metric]) lowered.push(`${label}: ${metric} ${before[metric]} -> ${after[metric]}`);
  }
};

const current = floorsOf(readFileSync(config, 'utf8'));
compare('working tree', committed('HEAD'), current);
for (const commit of git('log', '--format=%H', '--', config).split('\n').filter(Boolean)) {
  compare(`commit ${commit.slice(0, 10)}`, committed(`${commit}^`), committed(commit));
}

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
console.log('coverage floor: never lowered');
