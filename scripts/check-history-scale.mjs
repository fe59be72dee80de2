#!/usr/bin/env node
// How long the history checker takes on a large history: a valid model history of N
// operations (default 1,000,000) built in memory, checked (checkHistory), then written as
// JSON lines to a temp file and read back (readHistoryFile) and checked by `tally
// check-history` as a process. Prints figures; asserts nothing but the verdicts.
// Usage: npm run build && node scripts/check-history-scale.mjs [--operations N] [--namespaces K]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { checkHistory, formatHistoryLine, readHistoryFile } = require(
  path.join(root, 'dist/check/history.js'),
);
const { modelHistory } = require(path.join(root, 'dist/testing/history-model.js'));
const { seededRandom } = require(path.join(root, 'dist/testing/random.js'));

function arg(name, fallback) {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}
const operations = arg('--operations', 1_000_000);
const namespaces = arg('--namespaces', 16);

function timed(what, fn) {
  const t0 = process.hrtime.bigint();
  const result = fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`${what}: ${(ms / 1000).toFixed(2)} s`);
  return result;
}

const ops = timed(`build ${operations} operations (${namespaces} namespaces)`, () =>
  modelHistory(seededRandom(1), { operations, namespaces, startId: 2n ** 60n }),
);
const report = timed('checkHistory', () => checkHistory(ops));
console.log(
  `  ${report.operations} operations, ${report.acknowledged} ok, ${report.acknowledgedIds} IDs, ok=${report.ok}`,
);
if (!report.ok) throw new Error(`a valid history failed: ${report.violations[0]?.message}`);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-check-scale-'));
try {
  const file = path.join(dir, 'history.jsonl');
  timed('write the file', () =>
    fs.writeFileSync(file, `${ops.map(formatHistoryLine).join('\n')}\n`),
  );
  console.log(`  ${(fs.statSync(file).size / 1e6).toFixed(1)} MB`);
  const t0 = process.hrtime.bigint();
  const read = await readHistoryFile(file);
  console.log(`readHistoryFile: ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(2)} s`);
  if (read.length !== operations) throw new Error(`read ${read.length} operations`);
  const run = timed('tally check-history FILE (a process: start, read, check)', () =>
    spawnSync(process.execPath, [path.join(root, 'dist/cli/main.js'), 'check-history', file], {
      encoding: 'utf8',
    }),
  );
  process.stdout.write(run.stdout.replace(/^(?=.)/gm, '  '));
  if (run.status !== 0) throw new Error(`check-history exited ${run.status}: ${run.stderr}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
