#!/usr/bin/env node
// Failover benchmark (`npm run bench:failover`): a controller and two nodes on 127.0.0.1,
// load through the client library (scripts/bench-failover-load.mjs), then
//   1. --steady-s of full load with no faults: failovers must be 0 (no false positives); its
//      p99 is the steady figure the promoted node's first second is compared with;
//   2. --stalls times: SIGSTOP the primary for --stall-ms (300), then SIGCONT (an event loop
//      stalled by GC or a slow fsync): failovers must be 0;
//   3. --trials times: SIGKILL the current primary; failover time = kill → the first allocation
//      acknowledged in a new epoch through the client library; restart the killed node and
//      wait until the controller has it back in the in-sync set;
//   4. --stops times: SIGSTOP the primary (a paused process: its port still accepts
//      connections) until a new epoch acknowledges, then SIGCONT it (it rejoins as standby);
//   5. --cut-links times (root and iptables): every packet to the primary's port and from its
//      process is dropped (a pulled cable: silence, no reset) until a new epoch acknowledges;
//   6. --switchovers planned switchovers: the longest time without a completed allocation.
// Each fault trial also reports the split kill → controller decision → new primary
// confirmed → first acknowledgement, the controller's reason, and the p99 of calls started in
// the promoted node's first second (before the old primary comes back).
// Prints a Markdown report; JSON to bench-results/failover.json. Every process it starts is
// stopped by its own handle.
import { execFileSync, fork, spawn } from 'node:child_process';
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
    stops: { type: 'string', default: '5' },
    'cut-links': { type: 'string', default: '0' },
    stalls: { type: 'string', default: '5' },
    'stall-ms': { type: 'string', default: '300' },
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
  console.log(`usage: node scripts/bench-failover.mjs [--trials 20] [--stops 5] [--cut-links 0] [--stalls 5]
  [--stall-ms 300] [--in-flight 32] [--steady-s 60] [--switchovers 5]
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

/** Cut links need a group per node (iptables matches the packets its process sends). */
const cutLinks = Number(flags['cut-links']);
const nodeGid = { a: 47_301, b: 47_302 };

function spawnCli(args, logFile, gid) {
  const out = fs.openSync(logFile, 'a');
  const proc = spawn(process.execPath, [cliPath, ...args], {
    stdio: ['ignore', out, out],
    env: { ...process.env, LOG_LEVEL: 'warn' },
    ...(gid === undefined ? {} : { gid }),
  });
  fs.closeSync(out);
  children.add(proc);
  proc.exited = new Promise((resolve) => proc.on('exit', () => (children.delete(proc), resolve())));
  return proc;
}

/**
 * A pulled cable, with iptables on this host: nothing reaches the node's port and nothing its
 * process sends leaves (silence both ways, no reset). Returns the function that heals it.
 */
function cutLink(port, gid) {
  const rules = [
    ['INPUT', '-p', 'tcp', '--dport', String(port), '-j', 'DROP'],
    ['OUTPUT', '-m', 'owner', '--gid-owner', String(gid), '-j', 'DROP'],
  ];
  const heal = () => {
    activeCuts.delete(heal);
    for (const r of rules) execFileSync('iptables', ['-w', '-D', ...r]);
  };
  activeCuts.add(heal);
  for (const r of rules) execFileSync('iptables', ['-w', '-I', ...r]);
  return heal;
}

/** Cuts in place, healed on the way out whatever happens. */
const activeCuts = new Set();

function cutLinksUnavailable() {
  if (process.getuid?.() !== 0) return 'cut links need root (iptables)';
  try {
    execFileSync('iptables', ['-w', '-L', 'OUTPUT', '-n'], { stdio: 'ignore' });
  } catch {
    return 'iptables is missing or does not work here';
  }
  return null;
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
  if (cutLinks > 0) {
    const why = cutLinksUnavailable();
    if (why !== null) throw new Error(`bench-failover: --cut-links: ${why}`);
  }
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
    const gid = cutLinks > 0 ? nodeGid[id] : undefined;
    procs[id] = spawnCli(args[id], path.join(dir, `${id}.log`), gid);
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
  const windowReport = async (id) => {
    load.send({ type: 'window-report', id });
    return nextMessage(load, 'window', 10_000);
  };

  // 1. Steady load, no faults.
  const before = await controller.getConfig();
  const c0 = await count();
  log(`steady: ${steadyMs / 1000} s of load, no faults`);
  const steadyFrom = Date.now();
  load.send({ type: 'window', id: 'steady', fromMs: steadyFrom, toMs: steadyFrom + steadyMs });
  await sleep(steadyMs);
  const c1 = await count();
  const after = await controller.getConfig();
  const steadyLatency = await windowReport('steady');
  const steady = {
    seconds: steadyMs / 1000,
    allocationsPerS: Math.round((c1.ok - c0.ok) / (steadyMs / 1000)),
    failedCalls: c1.failed - c0.failed,
    failovers: after.lastFailover?.atUnixMs !== before.lastFailover?.atUnixMs ? 1 : 0,
    configChanges: after.version - before.version,
    p50Ms: steadyLatency.p50Ms,
    p99Ms: steadyLatency.p99Ms,
    // The p99 of each second of it: what a one-second p99 looks like without faults.
    secondP99MedianMs: steadyLatency.secondP99MedianMs,
    secondP99MaxMs: steadyLatency.secondP99MaxMs,
  };
  log(
    `steady: ${steady.allocationsPerS}/s, p99 ${steady.p99Ms} ms, failovers ${steady.failovers}, config changes ${steady.configChanges}`,
  );

  // 2. Stalls of the primary's whole process (SIGSTOP … SIGCONT): never a failover.
  const stallMs = Number(flags['stall-ms']);
  const stallRuns = [];
  for (let i = 1; i <= Number(flags.stalls); i++) {
    const config = await until('both nodes in sync', inSyncPair, 120_000);
    await sleep(1000);
    const victim = config.primary.id;
    procs[victim].kill('SIGSTOP');
    await sleep(stallMs);
    procs[victim].kill('SIGCONT');
    await sleep(2000); // several failover timeouts
    const later = await controller.getConfig();
    const failedOver = later.lastFailover?.atUnixMs !== config.lastFailover?.atUnixMs;
    stallRuns.push({
      n: i,
      stalled: victim,
      failover: failedOver,
      configChanges: later.version - config.version,
      reason: failedOver ? later.lastFailover?.reason : null,
    });
    log(
      `stall ${i}: ${victim} stopped ${stallMs} ms: ${failedOver ? `FAILOVER (${later.lastFailover?.reason})` : 'no failover'}, config changes ${later.version - config.version}`,
    );
  }

  /**
   * One fault trial: `fault(victim)` breaks the primary and returns how to repair it; the
   * failover time is the fault → the first allocation acknowledged in a newer epoch.
   */
  const faultTrial = async (kind, trial, fault) => {
    const config = await until('both nodes in sync', inSyncPair, 120_000);
    const victim = config.primary.id;
    await sleep(300); // load flowing on the current primary
    const resumed = nextMessage(load, 'resumed', 60_000);
    const t0 = Date.now();
    load.send({ type: 'mark', atMs: t0, epoch: config.epoch });
    const repair = await fault(victim);
    const r = await resumed;
    const failoverMs = r.atMs - t0;
    const promoted = await until('promotion recorded', () =>
      controller.getConfig().then((c) => (c.primary.id !== victim && !c.promoting ? c : null)),
    );
    // The promoted node's first second under load, before the old primary comes back.
    await sleep(Math.max(0, r.atMs + 1200 - Date.now()));
    const warm = await windowReport('warm');
    await repair();
    const f = promoted.lastFailover;
    const decidedMs = f ? f.atUnixMs - t0 : null;
    const row = {
      kind,
      trial,
      victim,
      failoverMs,
      decidedMs,
      promoteMs: f?.durationMs ?? null,
      clientMs: f ? r.atMs - (f.atUnixMs + f.durationMs) : null,
      reason: f?.reason ?? '?',
      epoch: promoted.epoch,
      warmP99Ms: warm.p99Ms,
      warmCount: warm.count,
    };
    log(
      `${kind} ${trial}: ${victim}; first ack in the new epoch after ${failoverMs} ms (decided at ${decidedMs} ms, promoted in ${row.promoteMs} ms); first-second p99 ${warm.p99Ms} ms; ${row.reason}`,
    );
    return row;
  };

  // 3. SIGKILL of the primary.
  const rows = [];
  for (let trial = 1; trial <= trials; trial++) {
    rows.push(
      await faultTrial('kill', trial, (victim) => {
        procs[victim].kill('SIGKILL');
        return async () => {
          await procs[victim].exited;
          startNode(victim);
        };
      }),
    );
  }
  // 4. SIGSTOP of the primary until the new epoch serves; then SIGCONT: it rejoins as standby.
  for (let trial = 1; trial <= Number(flags.stops); trial++) {
    rows.push(
      await faultTrial('stop', trial, (victim) => {
        procs[victim].kill('SIGSTOP');
        return async () => procs[victim].kill('SIGCONT');
      }),
    );
  }
  // 5. The primary's link cut (silence, no reset) until the new epoch serves; then healed.
  for (let trial = 1; trial <= cutLinks; trial++) {
    rows.push(
      await faultTrial('cut', trial, (victim) => {
        const heal = cutLink(ports[victim], nodeGid[victim]);
        return async () => heal();
      }),
    );
  }
  // 6. Planned switchovers: the longest time without a completed allocation around each.
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
  return { dir, steady, stalls: stallRuns, rows, switchovers, result };
}

function summarize(rows) {
  const ms = rows.map((r) => r.failoverMs).sort((x, y) => x - y);
  const warm = rows
    .map((r) => r.warmP99Ms)
    .filter((x) => x !== null)
    .sort((x, y) => x - y);
  return {
    trials: rows.length,
    medianMs: quantile(ms, 0.5),
    p90Ms: quantile(ms, 0.9),
    p99Ms: quantile(ms, 0.99),
    minMs: ms[0],
    maxMs: ms[ms.length - 1],
    warmP99MedianMs: warm.length > 0 ? quantile(warm, 0.5) : null,
    warmP99MaxMs: warm.length > 0 ? warm[warm.length - 1] : null,
  };
}

const faultNames = {
  kill: 'SIGKILL of the primary',
  stop: 'SIGSTOP of the primary (paused, port open)',
  cut: "the primary's link cut (silence)",
};

function report({ steady, stalls, rows, switchovers, result }) {
  const summary = {};
  console.log('## Tally failover benchmark\n');
  console.log(
    `- \`node scripts/bench-failover.mjs ${process.argv.slice(2).join(' ')}\`; ${os.cpus().length} cores; ` +
      `controller probe ${flags['probe-interval-ms']} ms, failover timeout ${flags['failover-timeout-ms']} ms; ` +
      `load: ${inFlight} concurrent allocate() loops through one TallyClient`,
  );
  console.log(
    '- failover time = the fault → the first allocation acknowledged in a new epoch through the client library; ' +
      'first-second p99 = calls started in the second after it (the promoted node, alone: the old primary comes back after)\n',
  );
  console.log('| figure | measured |\n| --- | ---: |');
  for (const kind of Object.keys(faultNames)) {
    const some = rows.filter((r) => r.kind === kind);
    if (some.length === 0) continue;
    const s = summarize(some);
    summary[kind] = s;
    console.log(
      `| ${faultNames[kind]} → first ack: median / p99 (= max) over ${s.trials} | ${s.medianMs} / ${s.p99Ms} ms (min ${s.minMs}, p90 ${s.p90Ms}) |`,
    );
    console.log(
      `| ${faultNames[kind]}: promoted node's first-second p99, median / worst | ${s.warmP99MedianMs} / ${s.warmP99MaxMs} ms (steady: p99 ${steady.p99Ms} ms; one-second p99s median ${steady.secondP99MedianMs}, worst ${steady.secondP99MaxMs} ms) |`,
    );
  }
  const stallFailovers = stalls.filter((s) => s.failover).length;
  console.log(
    `| failovers during ${steady.seconds} s of load without faults | ${steady.failovers} (${steady.configChanges} configuration changes) |`,
  );
  if (stalls.length > 0) {
    console.log(
      `| failovers after ${stalls.length} stalls of the primary (SIGSTOP ${flags['stall-ms']} ms, SIGCONT) | ${stallFailovers} |`,
    );
  }
  console.log(
    `| duplicate IDs / IDs going backwards in a client loop | ${result.duplicates} / ${result.backwards} |`,
  );
  console.log(
    `\nSteady load: ${steady.allocationsPerS}/s, p50 ${steady.p50Ms} ms, p99 ${steady.p99Ms} ms, ${steady.failedCalls} failed calls. ` +
      `Whole run: ${result.ok} acknowledged allocations (${result.ids} distinct IDs), ${result.failed} failed calls.\n`,
  );
  console.log(
    '| fault | trial | victim | first ack ms | decided ms | promoted in ms | client ms | first-second p99 ms | new epoch | controller reason |',
  );
  console.log('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) {
    console.log(
      `| ${r.kind} | ${r.trial} | ${r.victim} | ${r.failoverMs} | ${r.decidedMs ?? '?'} | ${r.promoteMs ?? '?'} | ${r.clientMs ?? '?'} | ${r.warmP99Ms ?? '?'} | ${r.epoch} | ${r.reason} |`,
    );
  }
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
  summary.steadyFailovers = steady.failovers;
  summary.stallFailovers = stallFailovers;
  return summary;
}

try {
  const run = await main();
  const summary = report(run);
  fs.mkdirSync(path.dirname(flags.json), { recursive: true });
  fs.writeFileSync(flags.json, JSON.stringify({ ...run, summary }, null, 2));
  log(`results written to ${flags.json}`);
  fs.rmSync(run.dir, { recursive: true, force: true });
  const bad =
    run.result.duplicates > 0 ||
    run.result.backwards > 0 ||
    summary.steadyFailovers > 0 ||
    summary.stallFailovers > 0;
  process.exit(bad ? 1 : 0);
} catch (err) {
  log(err.stack ?? String(err));
  for (const heal of [...activeCuts]) heal();
  for (const p of children) p.kill('SIGKILL');
  process.exit(1);
}
