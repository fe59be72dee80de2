// Redis 7 comparison: `npm run bench:redis` or `node scripts/bench-redis.mjs [flags]`.
// Prints a Markdown table on stdout (progress on stderr) and writes bench-results/redis.json.
// The logic lives in bench-redis-lib.mjs; see scripts/README.md for what it measures.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runRedisBench, runRedisWorker, workerFlag } from './bench-redis-lib.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const jsonPath = path.join(repoRoot, 'bench-results/redis.json');

const usage = `usage: node scripts/bench-redis.mjs [--clients 50] [--workers 1] [--duration-s 5]
                                   [--warmup-s 1] [--quick] [--pipeline] [--help]

Starts its own redis-server primary + replica on 127.0.0.1 (appendonly yes, appendfsync
always, fresh temp dirs), runs --clients connections each looping INCR then WAIT 1 1000 from
--workers forked processes, prints increments/s and latency percentiles, writes
${path.relative(process.cwd(), jsonPath) || jsonPath}.

  --clients N      concurrent connections (default 50)
  --workers N      load-generator processes sharing the clients (default 1: faster on 2 cores)
  --duration-s S   measured window (default 5; --quick: 2)
  --warmup-s S     warm-up before it (default 1; --quick: 0.5)
  --quick          shorter run
  --pipeline       send INCR and WAIT in one write (one round trip instead of two)

Needs redis-server (Redis 7): apt-get install -y redis-server (Debian/Ubuntu),
brew install redis (macOS). Exit codes: 0 ok, 1 failure or counter mismatch,
2 redis-server missing or bad flags.`;

function parseFlags() {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '50' },
      workers: { type: 'string', default: '1' },
      'duration-s': { type: 'string' },
      'warmup-s': { type: 'string' },
      quick: { type: 'boolean', default: false },
      pipeline: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  return values;
}

function fmtInt(n) {
  return Number.isNaN(n) ? 'n/a' : Math.round(n).toLocaleString('en-US');
}
function fmtMs(n) {
  return Number.isNaN(n) ? 'n/a' : n < 10 ? n.toFixed(2) : n.toFixed(1);
}

function printTable(r) {
  const mode = r.pipeline ? 'INCR + WAIT pipelined' : 'INCR, then WAIT 1 1000';
  const span = `${r.warmupMs / 1000} s warm-up + ${r.durationMs / 1000} s measured`;
  const lines = [
    '## Redis comparison: primary + replica, appendonly yes, appendfsync always',
    '',
    `- ${mode} per increment; ${span}; ${os.cpus().length} cores shared by both`,
    `  redis-server processes and ${r.workers} load-generator process(es)`,
    '',
    '| clients | workers | increments/s | p50 ms | p99 ms | max ms | not replicated | redis |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    `| ${r.clients} | ${r.workers} | ${fmtInt(r.incrPerSec)} | ${fmtMs(r.p50Ms)} | ` +
      `${fmtMs(r.p99Ms)} | ${fmtMs(r.maxMs)} | ${r.notReplicated} | ${r.redisVersion} |`,
    '',
    `Counter check: primary ${r.counterValue}, replica ${r.replicaCounterValue}, ` +
      `INCRs issued ${r.total} (incl. warm-up): ${r.counterMatches ? 'match' : 'MISMATCH'}.`,
  ];
  console.log(lines.join('\n'));
}

function writeJson(r) {
  const cpus = os.cpus();
  const doc = {
    command: `node scripts/bench-redis.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    date: new Date().toISOString(),
    machine: { cores: cpus.length, cpuModel: cpus[0]?.model, node: process.version },
    result: r,
  };
  fs.mkdirSync(path.dirname(jsonPath), { recursive: true });
  fs.writeFileSync(jsonPath, `${JSON.stringify(doc, null, 2)}\n`);
  process.stderr.write(`bench-redis: wrote ${jsonPath}\n`);
}

function numberFlag(flags, name, fallback) {
  const n = Number(flags[name] ?? fallback);
  if (!Number.isFinite(n) || n < 0) {
    throw Object.assign(new Error(`bench-redis: --${name} must be a number`), { code: 'USAGE' });
  }
  return n;
}

async function main() {
  let flags;
  try {
    flags = parseFlags();
  } catch (err) {
    console.error(`${err.message}\n\n${usage}`);
    process.exit(2);
  }
  if (flags.help) {
    console.log(usage);
    return;
  }
  const result = await runRedisBench({
    clients: numberFlag(flags, 'clients'),
    workers: numberFlag(flags, 'workers'),
    durationMs: 1000 * numberFlag(flags, 'duration-s', flags.quick ? 2 : 5),
    warmupMs: 1000 * numberFlag(flags, 'warmup-s', flags.quick ? 0.5 : 1),
    pipeline: flags.pipeline,
    log: (msg) => process.stderr.write(`${msg}\n`),
  });
  printTable(result);
  writeJson(result);
  if (!result.counterMatches) process.exitCode = 1;
}

if (process.argv.includes(workerFlag)) {
  runRedisWorker();
} else {
  main().catch((err) => {
    console.error(err.code === 'REDIS_MISSING' || err.code === 'USAGE' ? err.message : err);
    process.exit(err.code === 'REDIS_MISSING' || err.code === 'USAGE' ? 2 : 1);
  });
}
