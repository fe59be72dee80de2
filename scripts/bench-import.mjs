#!/usr/bin/env node
// What importing the package costs: modules loaded and time to require, median of N fresh
// node processes each, for `tally` (the client library) and `tally/node` (embedding a node).
// Usage: npm run bench:import [-- --runs N]
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const at = process.argv.indexOf('--runs');
const runs = at > 0 ? Number(process.argv[at + 1]) : 15;

function once(specifier) {
  const script = `
    const t0 = process.hrtime.bigint();
    require(${JSON.stringify(specifier)});
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const mods = Object.keys(require.cache);
    process.stdout.write(JSON.stringify({ ms, modules: mods.length,
      native: mods.filter((f) => f.endsWith('.node')).length }));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`require(${specifier}) failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`| import | modules | native addons | require time (median of ${runs}) |`);
console.log('| --- | ---: | ---: | ---: |');
for (const specifier of ['tally', 'tally/node']) {
  const samples = Array.from({ length: runs }, () => once(specifier));
  const ms = median(samples.map((s) => s.ms));
  console.log(
    `| \`${specifier}\` | ${samples[0].modules} | ${samples[0].native} | ${ms.toFixed(1)} ms |`,
  );
}
