#!/usr/bin/env node
// Failover benchmark (`npm run bench:failover`): a controller and two nodes on 127.0.0.1,
// load through the client library (scripts/bench-failover-load.mjs), then
//   1. --steady-s of full load with no faults: failovers must be 0 (no false positives);
//   2. --trials times: SIGKILL the current primary; failover time = kill → the first
//      allocation that completes through the client library after it; restart the killed node
//      and wait until the controller has it back in the in-sync set.
// Prints a Markdown report; JSON to bench-results/failover.json. Every process it starts is
// stopped by its own handle.
import { fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const repoRoot = path.join(import.meta.dirname, '..');
const distDir = path.join(repoRoot, 'dist');
const cliPath = path.join(distDir, 'cli/main.js');

const { values: flags } = parseArgs({
  options: {
    trials: { type: 'string', default: '20' },
    'in-flight': { type: 'string', default: '32' },
    'steady-s': { type: 'string', default: '60' },
    switchovers: { type: 'string', default: '5' },
    'probe-interval-ms': { type: 'string', default: '100' },
    'failover-timeout-ms': { type: 'string', default: '500' },
    json: { type: 'string', default: path.join(repoRoot, 'bench-results/failover.json') },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  console.log(`usage: node scripts/bench-failover.mjs [--trials 20] [--in-flight 32] [--steady-s 60] [--switchovers 5]
  [--probe-interval-ms 100] [--failover-timeout-ms 500] [--json PATH]`);
  process.exit(0);
}
const trials = Number(flags.trials);
const inFlight = Number(flags['in-flight']);
const steadyMs = 1000 * Number(flags['steady-s']);
if (!fs.existsSync(cliPath)) {
  console.error(`bench-failover: ${cliPath} missing; run npm run build`);
  process.exit(2);
}
const { ControllerClient } = await import(path.join(distDir, 'server/controller-client.js'));
const { clusterArgs } = await import(path.join(distDir, 'cli/cluster.js'));

const children = new Set();
const log = (m) => process.stderr.write(`[bench-failover] ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function spawnCli(args, logFile) {
  const out = fs.openSync(logFile, 'a');
  const proc = spawn(process.execPath, [cliPath, ...args], {
    stdio: ['ignore', out, out],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  fs.closeSync(out);
  children.add(proc);
  proc.exited = new Promise((resolve) => proc.on('exit', () => (children.delete(proc), resolve())));
  return proc;
}

async function until(what, probe, timeoutMs = 60_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`bench-failover: timed out waiting for ${what}`);
    await sleep(20);
  }
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function nextMessage(child, type, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`bench-failover: no ${type} from the load`)),
      timeoutMs,
    );
    const on = (m) => {
      if (m.type !== type) return;
      clearTimeout(timer);
      child.off('message', on);
      resolve(m);
    };
    child.on('message', on);
  });
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-failover-'));
  const ports = { c: await freePort(), a: await freePort(), b: await freePort() };
  const address = { a: `127.0.0.1:${ports.a}`, b: `127.0.0.1:${ports.b}` };
  const controllerAddress = `127.0.0.1:${ports.c}`;
  log(`cluster under ${dir}; controller ${controllerAddress}, a ${address.a}, b ${address.b}`);
  const args = clusterArgs({
    dataDir: dir,
    address: { ...address, controller: controllerAddress },
    metrics: { controller: '127.0.0.1:0', a: '127.0.0.1:0', b: '127.0.0.1:0' },
    controllerArgs: [
      '--probe-interval-ms',
      flags['probe-interval-ms'],
      '--failover-timeout-ms',
      flags['failover-timeout-ms'],
    ],
  });
  spawnCli(args.controller, path.join(dir, 'controller.log'));
  const procs = {};
  const startNode = (id) => {
    procs[id] = spawnCli(args[id], path.join(dir, `${id}.log`));
  };
  startNode('a');
  startNode('b');
  const controller = new ControllerClient(controllerAddress);
  const inSyncPair = () =>
    controller.getConfig().then((c) => (c.inSync.length === 2 && !c.promoting ? c : null));
  await until('both nodes in sync', inSyncPair);

  const load = fork(path.join(repoRoot, 'scripts/bench-failover-load.mjs'), [], {
    stdio: 'inherit',
  });
  children.add(load);
  load.send({
    type: 'start',
    addresses: [address.a, address.b],
    inFlight,
    namespace: 'bench',
    distDir,
  });
  await nextMessage(load, 'started', 10_000);
  const count = async () => {
    load.send({ type: 'count' });
    return nextMessage(load, 'count', 10_000);
  };

  // 1. Steady load, no faults.
  const before = await controller.getConfig();
  const c0 = await count();
  log(`steady: ${steadyMs / 1000} s of load, no faults`);
  await sleep(steadyMs);
  const c1 = await count();
  const after = await controller.getConfig();
  const steady = {
    seconds: steadyMs / 1000,
    allocationsPerS: Math.round((c1.ok - c0.ok) / (steadyMs / 1000)),
    failedCalls: c1.failed - c0.failed,
    failovers: after.lastFailover?.atUnixMs !== before.lastFailover?.atUnixMs ? 1 : 0,
    configChanges: after.version - before.version,
  };
  log(
    `steady: ${steady.allocationsPerS}/s, failovers ${steady.failovers}, config changes ${steady.configChanges}`,
  );

  // 2. Kill the primary, trial after trial.
  const rows = [];
  for (let trial = 1; trial <= trials; trial++) {
    const config = await until('both nodes in sync', inSyncPair, 120_000);
    const victim = config.primary.id;
    await sleep(300); // load flowing on the current primary
    const t0 = Date.now();
    load.send({ type: 'mark', atMs: t0 });
    const resumed = nextMessage(load, 'resumed', 60_000);
    procs[victim].kill('SIGKILL');
    const r = await resumed;
    const failoverMs = r.atMs - t0;
    await procs[victim].exited;
    const promoted = await until('promotion recorded', () =>
      controller.getConfig().then((c) => (c.primary.id !== victim && !c.promoting ? c : null)),
    );
    rows.push({
      trial,
      killed: victim,
      failoverMs,
      decideToServingMs: promoted.lastFailover?.durationMs,
      epoch: promoted.epoch,
    });
    log(`trial ${trial}: killed ${victim}, allocations resumed after ${failoverMs} ms`);
    startNode(victim);
  }
  // 3. Planned switchovers: the longest time without a completed allocation around each.
  const switchovers = [];
  for (let i = 1; i <= Number(flags.switchovers); i++) {
    await until('both nodes in sync', inSyncPair, 120_000);
    await sleep(300);
    load.send({ type: 'gap-start' });
    const t0 = Date.now();
    const after = await controller.switchover();
    const callMs = Date.now() - t0;
    await sleep(500);
    load.send({ type: 'gap-stop' });
    const gap = await nextMessage(load, 'gap', 10_000);
    switchovers.push({
      n: i,
      to: after.primary.id,
      callMs,
      pauseMs: gap.maxMs,
      controllerMs: after.lastFailover?.durationMs,
    });
    log(`switchover ${i}: → ${after.primary.id}, longest pause ${gap.maxMs} ms`);
  }
  load.send({ type: 'stop' });
  const result = await nextMessage(load, 'result', 60_000);
  controller.close();
  for (const p of children) p.kill('SIGTERM');
  await Promise.all([...children].map((p) => p.exited ?? Promise.resolve()));
  return { dir, steady, rows, switchovers, result };
}

function report({ steady, rows, switchovers, result }) {
  const ms = rows.map((r) => r.failoverMs).sort((x, y) => x - y);
  const summary = {
    trials: rows.length,
    medianMs: quantile(ms, 0.5),
    p90Ms: quantile(ms, 0.9),
    p99Ms: quantile(ms, 0.99),
    minMs: ms[0],
    maxMs: ms[ms.length - 1],
  };
  console.log('## Tally failover benchmark\n');
  console.log(
    `- \`node scripts/bench-failover.mjs ${process.argv.slice(2).join(' ')}\`; ${os.cpus().length} cores; ` +
      `controller probe ${flags['probe-interval-ms']} ms, failover timeout ${flags['failover-timeout-ms']} ms; ` +
      `load: ${inFlight} concurrent allocate() loops through one TallyClient`,
  );
  console.log(
    '- failover time = SIGKILL of the primary → first allocation completed through the client library after it\n',
  );
  console.log('| figure | target | measured |\n| --- | --- | ---: |');
  console.log(
    `| failover time, median over ${summary.trials} trials | ≤ 1 s | ${summary.medianMs} ms |`,
  );
  console.log(`| failover time, p99 | ≤ 2 s | ${summary.p99Ms} ms |`);
  console.log(
    `| failovers during ${steady.seconds} s of load without faults | 0 | ${steady.failovers} |`,
  );
  console.log(
    `| duplicate IDs / IDs going backwards in a client loop | 0 / 0 | ${result.duplicates} / ${result.backwards} |`,
  );
  console.log(
    `\nSteady load: ${steady.allocationsPerS}/s, ${steady.failedCalls} failed calls, ${steady.configChanges} configuration changes. ` +
      `Whole run: ${result.ok} acknowledged allocations (${result.ids} distinct IDs), ${result.failed} failed calls.\n`,
  );
  console.log('| trial | killed | failover ms | controller: decision → serving ms | new epoch |');
  console.log('| ---: | --- | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${r.trial} | ${r.killed} | ${r.failoverMs} | ${r.decideToServingMs ?? '?'} | ${r.epoch} |`,
    );
  }
  console.log(`\nmin ${summary.minMs} ms, p90 ${summary.p90Ms} ms, max ${summary.maxMs} ms.`);
  if (switchovers.length > 0) {
    console.log('\nPlanned switchovers (`tally switchover`) under the same load; the pause is the');
    console.log('longest time in which no allocation completed, around the switchover.\n');
    console.log(
      '| switchover | new primary | longest pause ms | switchover call ms | controller ms |',
    );
    console.log('| ---: | --- | ---: | ---: | ---: |');
    for (const w of switchovers) {
      console.log(`| ${w.n} | ${w.to} | ${w.pauseMs} | ${w.callMs} | ${w.controllerMs ?? '?'} |`);
    }
    summary.switchoverPauseMaxMs = Math.max(...switchovers.map((w) => w.pauseMs));
  }
  return summary;
}

try {
  const run = await main();
  const summary = report(run);
  fs.mkdirSync(path.dirname(flags.json), { recursive: true });
  fs.writeFileSync(flags.json, JSON.stringify({ ...run, summary }, null, 2));
  log(`results written to ${flags.json}`);
  fs.rmSync(run.dir, { recursive: true, force: true });
  const bad = run.result.duplicates > 0 || run.result.backwards > 0;
  process.exit(bad ? 1 : 0);
} catch (err) {
  log(err.stack ?? String(err));
  for (const p of children) p.kill('SIGKILL');
  process.exit(1);
}
