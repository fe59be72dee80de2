// Tally benchmark: `npm run bench` (builds first) or `node scripts/bench.mjs [flags]`.
// Prints Markdown tables on stdout (progress goes to stderr) and writes
// bench-results/latest.json. See scripts/README.md for what each section measures.
import { execFileSync, fork, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import {
  allocateRequestFrame,
  fromJson,
  loadTallyProto,
  mergeHistograms,
  metricByCode,
  metricSum,
  newHistogram,
  parseH2loadLog,
  parseH2loadReport,
  percentileOfSorted,
  percentileUs,
  recordUs,
  repoRoot,
} from './bench-lib.mjs';
import { runRedisBench } from './bench-redis-lib.mjs';

const sections = ['stream', 'unary', 'grpcjs', 'baseline', 'recovery', 'replicated', 'redis'];
const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'duration-s': { type: 'string' },
    'warmup-s': { type: 'string' },
    workers: { type: 'string', default: '2' },
    'in-flight': { type: 'string', default: '1,16,64,256' },
    'recovery-records': { type: 'string' },
    restarts: { type: 'string', default: '3' },
    profile: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    json: { type: 'string', default: path.join(repoRoot, 'bench-results/latest.json') },
    'self-test': { type: 'boolean', default: false },
    'redis-clients': { type: 'string', default: '50,256' },
    'redis-rounds': { type: 'string' },
    'compare-rounds': { type: 'string' },
    'redis-paths': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (flags.help) {
  console.log(`usage: node scripts/bench.mjs [--quick] [--only ${sections.join(',')}]
  [--duration-s N] [--warmup-s N] [--workers N] [--in-flight 1,16,64,256]
  [--recovery-records N] [--restarts N] [--profile] [--keep] [--json PATH] [--self-test]
  [--compare-rounds N] [--redis-clients 50,256] [--redis-rounds N]`);
  process.exit(0);
}

const only = new Set((flags.only ?? sections.join(',')).split(',').map((s) => s.trim()));
for (const s of only) {
  if (!sections.includes(s)) fail(`bench: unknown section "${s}" (known: ${sections.join(', ')})`);
}
const durationMs = 1000 * Number(flags['duration-s'] ?? (flags.quick ? 2 : 5));
// 3 s: a fresh node's JIT needs about that much load before its tail latency settles (a run
// measured from 1 s in had twice the p99 of one from 3 s in).
const warmupMs = 1000 * Number(flags['warmup-s'] ?? (flags.quick ? 0.5 : 3));
const workersMax = Number(flags.workers);
const inFlightLevels = flags['in-flight'].split(',').map(Number);
const recoveryRecords = Number(flags['recovery-records'] ?? (flags.quick ? 200_000 : 1_000_000));
const restarts = Number(flags.restarts);
const compareRounds = Number(flags['compare-rounds'] ?? (flags.quick ? 1 : 2));
const cliPath = path.join(repoRoot, 'dist/cli/main.js');
const distDir = path.join(repoRoot, 'dist');
const clientScript = path.join(repoRoot, 'scripts/bench-client.mjs');
const namespace = 'bench';
const bulkCount = 100;
const bigCheckpointRecords = 1_000_000_000;

const proto = grpc.loadPackageDefinition(loadTallyProto());
/** Every child process we started, by pid, so cleanup can stop exactly those. */
const children = new Map();
const tempDirs = [];

function log(msg) {
  process.stderr.write(`[bench] ${msg}\n`);
}

function fail(msg) {
  process.stderr.write(`${msg}\n`);
  process.exit(2);
}

// ---- servers -----------------------------------------------------------------------------
async function makeTempDir(label) {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), `tally-bench-${label}-`));
  tempDirs.push(dir);
  return dir;
}

/** Reads the high-water mark of the resident set (VmHWM) of a live process, in bytes. */
function peakRssBytes(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

/**
 * Spawns `tally serve` and resolves once it prints its serving line. The returned handle
 * stops the process by its own pid.
 */
async function startServer({ label, engine = 'wal', dataDir, extraArgs = [], nodeArgs = [] }) {
  dataDir ??= path.join(await makeTempDir(label), 'data');
  const logPath = `${dataDir}.log`;
  const logStream = fs.createWriteStream(logPath);
  const args = [
    ...nodeArgs,
    cliPath,
    'serve',
    '--id',
    'bench',
    '--data-dir',
    dataDir,
    '--listen',
    '127.0.0.1:0',
    '--metrics-listen',
    '127.0.0.1:0',
    ...(engine === 'wal' ? [] : ['--engine', engine]),
    ...extraArgs,
  ];
  const spawnedMs = performance.now();
  const proc = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' },
  });
  children.set(proc.pid, proc);
  const exited = new Promise((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  exited.then(() => children.delete(proc.pid));
  proc.stderr.pipe(logStream, { end: false });
  const serving = await new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(
      () => reject(new Error(`bench: ${label} server not serving in 60 s`)),
      60_000,
    );
    proc.stdout.on('data', (chunk) => {
      logStream.write(chunk);
      buffered += chunk.toString('utf8');
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.includes('"serving"')) continue;
        try {
          const ev = JSON.parse(line);
          if (ev.event === 'serving') {
            clearTimeout(timer);
            resolve({ ...ev, servingMs: performance.now() });
          }
        } catch {
          // Not the serving line.
        }
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(
        new Error(
          `bench: ${label} server exited (${code ?? signal}) before serving; log: ${logPath}`,
        ),
      );
    });
  });
  const target = `127.0.0.1:${serving.grpcPort}`;
  const server = {
    label,
    engine,
    proc,
    pid: proc.pid,
    dataDir,
    logPath,
    target,
    metricsUrl: `http://127.0.0.1:${serving.metricsPort}/metrics`,
    spawnedMs,
    servingMs: serving.servingMs,
    exited,
    peakRssBytes: () => peakRssBytes(proc.pid),
    async stop(signal = 'SIGTERM') {
      if (children.has(proc.pid)) {
        proc.kill(signal);
        const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        const result = await exited;
        clearTimeout(timer);
        logStream.end();
        return result;
      }
      logStream.end();
      return exited;
    },
  };
  return server;
}

function scrape(server) {
  return new Promise((resolve, reject) => {
    const req = http.get(server.metricsUrl, { timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () =>
        res.statusCode === 200
          ? resolve(body)
          : reject(new Error(`bench: GET ${server.metricsUrl} → ${res.statusCode}`)),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`bench: GET ${server.metricsUrl} timed out`)));
    req.on('error', reject);
  });
}

function adminStatus(server) {
  const client = new proto.tally.v1.Admin(server.target, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.Status({}, { deadline: Date.now() + 10_000 }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    });
  });
}

/** Server-side view of a finished cell: requests by status code and the namespace's last ID. */
async function serverTally(server) {
  const out = { codes: {}, lastId: undefined };
  try {
    out.codes = metricByCode(await scrape(server), 'tally_requests_total');
  } catch (err) {
    log(`metrics scrape failed: ${err.message}`);
  }
  try {
    const status = await adminStatus(server);
    out.lastId = status.namespaces.find((n) => n.name === namespace)?.last_id ?? 0;
  } catch (err) {
    log(`Admin.Status failed: ${err.message}`);
  }
  return out;
}

// ---- load-generator worker cells (bench-client.mjs) ---------------------------------------
// Modes: 'stream' = AllocateStream from the lean client (node:http2, hand-rolled protobuf);
// 'grpcjs-stream' = AllocateStream from grpc-js; 'unary' = unary Allocate from grpc-js.
function splitEvenly(total, parts) {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}

function waitFor(child, type) {
  return new Promise((resolve, reject) => {
    const onMsg = (msg) => {
      if (msg.type === type) {
        child.off('message', onMsg);
        resolve(msg);
      } else if (msg.type === 'error') {
        reject(new Error(`bench client ${child.pid}: ${msg.message}`));
      }
    };
    child.on('message', onMsg);
    child.once('exit', (code) => reject(new Error(`bench client ${child.pid} exited ${code}`)));
  });
}

/** Asks a worker to exit and waits for it (a worker that hangs is killed by its pid). */
function stopClient(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  if (child.connected) child.send({ type: 'exit' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  return exited.finally(() => clearTimeout(timer));
}

function forkClient() {
  const child = fork(clientScript, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.set(child.pid, child);
  child.on('exit', () => children.delete(child.pid));
  return child;
}

async function runClientLoad(server, { mode, inFlight, count, processes = workersMax }) {
  const workers = Math.min(inFlight, processes);
  const shares = splitEvenly(inFlight, workers);
  const clients = shares.map(() => forkClient());
  try {
    await Promise.all(
      clients.map((c, i) => {
        const ready = waitFor(c, 'ready');
        c.send({
          type: 'run',
          mode,
          target: server.target,
          namespace,
          count,
          inFlight: shares[i],
          streams: 1,
        });
        return ready;
      }),
    );
    const results = await Promise.all(
      clients.map((c) => {
        const done = waitFor(c, 'result');
        c.send({ type: 'go', warmupMs, durationMs });
        return done;
      }),
    );
    const hist = mergeHistograms(results.map((r) => fromJson(r.histogram)));
    const errors = {};
    for (const r of results)
      for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    const ok = results.reduce((a, r) => a + r.ok, 0);
    const ids = results.reduce((a, r) => a + r.ids, 0);
    const windowS = results.reduce((a, r) => a + r.windowMs, 0) / results.length / 1000;
    return {
      inFlight,
      workers,
      ok,
      reqPerS: ok / windowS,
      idsPerS: ids / windowS,
      p50Ms: percentileUs(hist, 0.5) / 1000,
      p99Ms: percentileUs(hist, 0.99) / 1000,
      maxMs: hist.maxUs / 1000,
      clientErrors: errors,
    };
  } finally {
    await Promise.all(clients.map(stopClient));
  }
}

// ---- h2load cells --------------------------------------------------------------------------
function h2loadVersion() {
  try {
    return execFileSync('h2load', ['--version'], { encoding: 'utf8' }).split('\n')[0].trim();
  } catch {
    return undefined;
  }
}

/** In-flight level → h2load connections (-c) × concurrent streams per connection (-m). */
function h2loadShape(inFlight) {
  const connections = Math.min(inFlight, 4);
  return { connections, streams: Math.ceil(inFlight / connections) };
}

async function runH2load(server, { inFlight, count, connections: fixedConnections }) {
  const dir = path.dirname(server.dataDir);
  const bodyPath = path.join(dir, `allocate-${count}.grpc`);
  const logFile = path.join(dir, `h2load-${inFlight}-${count}.log`);
  fs.writeFileSync(bodyPath, allocateRequestFrame(namespace, count));
  const { connections, streams } =
    fixedConnections === undefined
      ? h2loadShape(inFlight)
      : { connections: fixedConnections, streams: Math.ceil(inFlight / fixedConnections) };
  const args = [
    '-c',
    String(connections),
    '-m',
    String(streams),
    '-t',
    '1',
    '-D',
    `${durationMs}ms`,
    `--warm-up-time=${warmupMs}ms`,
    '-d',
    bodyPath,
    '-H',
    'content-type: application/grpc',
    '-H',
    'te: trailers',
    `--log-file=${logFile}`,
    `http://${server.target}/tally.v1.Counter/Allocate`,
  ];
  const output = await new Promise((resolve, reject) => {
    const proc = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.set(proc.pid, proc);
    let text = '';
    proc.stdout.on('data', (c) => (text += c));
    proc.stderr.on('data', (c) => (text += c));
    proc.on('exit', (code) => {
      children.delete(proc.pid);
      if (code === 0) resolve(text);
      else reject(new Error(`bench: h2load exited ${code}:\n${text}`));
    });
  });
  const report = parseH2loadReport(output);
  const latenciesUs = parseH2loadLog(fs.readFileSync(logFile, 'utf8'));
  return {
    inFlight,
    connections,
    streams,
    report,
    reqPerS: report.reqPerS,
    idsPerS: report.reqPerS * count,
    p50Ms: percentileOfSorted(latenciesUs, 0.5) / 1000,
    p99Ms: percentileOfSorted(latenciesUs, 0.99) / 1000,
    maxMs: latenciesUs.length > 0 ? latenciesUs[latenciesUs.length - 1] / 1000 : NaN,
    logged: latenciesUs.length,
  };
}

// ---- one cell = one fresh server on its own temp dir --------------------------------------
const rssRuns = [];

/** Waits until Admin.Status says serving (a primary: its standby accepted the epoch). */
async function untilServing(server) {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    const status = await adminStatus(server).catch(() => null);
    if (status?.state === 'serving') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`bench: ${server.label} not serving allocations in 60 s`);
}

/** A primary replicating to a standby (both on this machine); the standby is started first. */
async function startReplicatedPair(label, serverOpts) {
  const standby = await startServer({
    label: `${label}-standby`,
    nodeArgs: serverOpts.nodeArgs,
    extraArgs: ['--role', 'standby', '--id', 'bench-standby'],
  });
  try {
    const primary = await startServer({
      label,
      ...serverOpts,
      extraArgs: [
        ...(serverOpts.extraArgs ?? []),
        '--role',
        'primary',
        '--standby',
        standby.target,
      ],
    });
    await untilServing(primary);
    const stop = primary.stop.bind(primary);
    primary.standby = standby;
    primary.stop = async (signal) => {
      const result = await stop(signal);
      rssRuns.push({
        run: `${label} (standby)`,
        engine: 'wal',
        peakRssBytes: standby.peakRssBytes(),
      });
      await standby.stop();
      return result;
    };
    return primary;
  } catch (err) {
    await standby.stop();
    throw err;
  }
}

async function cell(label, engine, fn, serverOpts = {}) {
  log(`${label}: starting server (${engine}${serverOpts.replicated ? ', replicated' : ''})`);
  const opts = { label: label.replace(/[^a-z0-9]+/gi, '-'), engine, ...serverOpts };
  const server = serverOpts.replicated
    ? await startReplicatedPair(opts.label, opts)
    : await startServer(opts);
  let result;
  try {
    result = await fn(server);
    const tally = await serverTally(server);
    const okCodes = tally.codes.OK ?? 0;
    // A load generator that stops with requests in flight (h2load) resets those streams: at
    // most `inFlight` CANCELLED are the stop itself, not failures.
    const cancelled = tally.codes.CANCELLED ?? 0;
    const cancelledAtStop = Math.min(cancelled, result.inFlight ?? 0);
    const nonOk = Object.entries(tally.codes).filter(([k]) => k !== 'OK');
    result.server = { codes: tally.codes, lastId: tally.lastId };
    result.serverErrors = nonOk.reduce((a, [, v]) => a + v, 0) - cancelledAtStop;
    result.cancelledAtStop = cancelledAtStop;
    result.serverOk = okCodes;
    result.peakRssBytes = server.peakRssBytes();
    rssRuns.push({ run: label, engine, peakRssBytes: result.peakRssBytes });
    log(
      `${label}: ${fmtInt(result.reqPerS)} req/s, p50 ${fmtMs(result.p50Ms)} ms, p99 ${fmtMs(result.p99Ms)} ms, ` +
        `server OK ${okCodes} errors ${result.serverErrors}, rss ${fmtMb(result.peakRssBytes)} MB`,
    );
    return result;
  } finally {
    const { code, signal } = await server.stop();
    if (code !== 0)
      log(
        `${label}: server exit ${code ?? signal} (expected 0 after SIGTERM); log ${server.logPath}`,
      );
    if (result !== undefined && serverOpts.nodeArgs?.includes('--trace-gc')) {
      result.gc = {
        primary: gcPauses(server.logPath),
        standby: server.standby ? gcPauses(server.standby.logPath) : undefined,
      };
      log(
        `${label}: GC pauses, primary max ${fmtMs(result.gc.primary.maxMs)} ms (${result.gc.primary.over20Ms} over 20 ms)` +
          (result.gc.standby ? `, standby max ${fmtMs(result.gc.standby.maxMs)} ms` : ''),
      );
    }
  }
}

/** The pauses in a node's --trace-gc output (its log): how many, the longest, how many > 20 ms. */
function gcPauses(logPath) {
  let count = 0;
  let maxMs = 0;
  let over20Ms = 0;
  for (const m of fs
    .readFileSync(logPath, 'utf8')
    .matchAll(/ms: (?:Scavenge|Mark-Compact|Minor Mark-Compact)[^\n]*?, ([\d.]+) \/ [\d.]+ ms/g)) {
    const ms = Number(m[1]);
    count++;
    maxMs = Math.max(maxMs, ms);
    if (ms > 20) over20Ms++;
  }
  return { count, maxMs, over20Ms };
}

function loadLevels() {
  return [
    ...inFlightLevels.map((inFlight) => ({ inFlight, count: 1 })),
    {
      inFlight: inFlightLevels.includes(64) ? 64 : inFlightLevels[inFlightLevels.length - 1],
      count: bulkCount,
    },
  ];
}

async function streamSection(replicated = false) {
  const rows = [];
  for (const { inFlight, count } of loadLevels()) {
    const profile = flags.profile && inFlight === (replicated ? 256 : 64) && count === 1;
    const nodeArgs = profile
      ? ['--cpu-prof', `--cpu-prof-dir=${path.join(repoRoot, 'bench-results/profiles')}`]
      : [];
    const r = await cell(
      `${replicated ? 'replicated ' : ''}stream ${inFlight}x${count}`,
      'wal',
      (s) => runClientLoad(s, { mode: 'stream', inFlight, count }),
      { nodeArgs, replicated },
    );
    rows.push({ inFlight, count, ...r });
  }
  return rows;
}

async function grpcjsUnarySection() {
  const rows = [];
  for (const { inFlight, count } of loadLevels()) {
    const r = await cell(`grpc-js unary ${inFlight}x${count}`, 'wal', (s) =>
      runClientLoad(s, { mode: 'unary', inFlight, count }),
    );
    rows.push({ inFlight, count, ...r });
  }
  return rows;
}

/** AllocateStream from grpc-js clients at one level, beside the lean client's stream rows. */
async function grpcjsStreamSection() {
  const inFlight = inFlightLevels.includes(64) ? 64 : inFlightLevels[inFlightLevels.length - 1];
  const r = await cell(`grpc-js stream ${inFlight}x1`, 'wal', (s) =>
    runClientLoad(s, { mode: 'grpcjs-stream', inFlight, count: 1 }),
  );
  return [{ inFlight, count: 1, ...r }];
}

async function h2loadSection(levels = loadLevels(), replicated = false) {
  const rows = [];
  for (const { inFlight, count } of levels) {
    const label = `${replicated ? 'replicated ' : ''}unary h2load ${inFlight}x${count}`;
    const r = await cell(
      label,
      'wal',
      async (s) => {
        const res = await runH2load(s, { inFlight, count });
        // gRPC errors arrive as HTTP 200 + grpc-status trailer, which h2load counts as success:
        // the server's own count of acknowledged IDs must cover every "succeeded" request.
        const tally = await serverTally(s);
        res.acknowledged = tally.lastId === undefined ? undefined : tally.lastId / count;
        res.unconfirmed =
          res.acknowledged === undefined
            ? undefined
            : Math.max(0, res.report.succeeded - res.acknowledged);
        return res;
      },
      { replicated },
    );
    rows.push({ inFlight, count, ...r });
  }
  return rows;
}

/** Runs one no-gRPC measurement in a forked worker and returns its rate per second. */
async function contextRate(msg) {
  const child = forkClient();
  try {
    const rate = waitFor(child, 'rate');
    child.send(msg);
    return (await rate).perS;
  } finally {
    await stopClient(child);
  }
}

/**
 * Baseline and WAL cells alternate (B W B W …) so that drift in what the shared disk and
 * CPUs deliver hits both engines alike; the ratio is of the per-engine medians.
 */
async function baselineSection() {
  const inFlight = 64;
  const rows = [];
  for (let round = 1; round <= compareRounds; round++) {
    for (const engine of ['baseline', 'wal']) {
      const r = await cell(`compare ${engine} stream ${inFlight}x1 #${round}`, engine, (s) =>
        runClientLoad(s, { mode: 'stream', inFlight, count: 1 }),
      );
      rows.push({ engine, round, inFlight, ...r });
    }
  }
  const medianOf = (engine) =>
    median(rows.filter((r) => r.engine === engine).map((r) => r.reqPerS));
  const [baselineMedian, walMedian] = [medianOf('baseline'), medianOf('wal')];
  log('compare: in-process context rows (no gRPC)');
  const dir = await makeTempDir('context');
  const context = {
    devicePerS: await contextRate({ type: 'device', file: path.join(dir, 'device'), durationMs }),
    baselineInProcessPerS: await contextRate({
      type: 'inproc',
      distDir,
      engine: 'baseline',
      dataDir: path.join(dir, 'baseline'),
      inFlight,
      durationMs,
    }),
    walInProcessPerS: await contextRate({
      type: 'inproc',
      distDir,
      engine: 'wal',
      dataDir: path.join(dir, 'wal'),
      inFlight,
      durationMs,
    }),
  };
  return { rows, baselineMedian, walMedian, ratio: walMedian / baselineMedian, context };
}

// ---- recovery ------------------------------------------------------------------------------
async function fillDataDir(dataDir) {
  const child = forkClient();
  try {
    const filled = waitFor(child, 'filled');
    child.send({
      type: 'fill',
      distDir,
      id: 'bench',
      dataDir,
      records: recoveryRecords,
      inFlight: 8192,
      namespaces: 16,
    });
    const res = await filled;
    return res;
  } finally {
    // SIGKILL, like a crash: a graceful close might checkpoint and leave nothing to replay.
    child.kill('SIGKILL');
    await new Promise((resolve) =>
      child.exitCode !== null || child.signalCode !== null
        ? resolve()
        : child.once('exit', resolve),
    );
  }
}

function firstAllocate(target, deadlineMs) {
  const client = new proto.tally.v1.Counter(target, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const attempt = () => {
      client.Allocate(
        { namespace: 'ns0', count: 1 },
        { deadline: Date.now() + 5000 },
        (err, res) => {
          if (!err) {
            client.close();
            return resolve({ atMs: performance.now(), first: res.first });
          }
          if (performance.now() > deadlineMs) {
            client.close();
            return reject(err);
          }
          setTimeout(attempt, 5);
        },
      );
    };
    attempt();
  });
}

function recoveryLogLine(logPath) {
  try {
    const lines = fs.readFileSync(logPath, 'utf8').split('\n');
    return lines.filter((l) => /recover|replay/i.test(l)).slice(-1)[0];
  } catch {
    return undefined;
  }
}

async function recoverySection() {
  const dataDir = path.join(await makeTempDir('recovery'), 'data');
  log(`recovery: writing ${recoveryRecords} records in-process (no checkpoint) into ${dataDir}`);
  const filled = await fillDataDir(dataDir);
  log(`recovery: filled ${filled.records} records in ${(filled.ms / 1000).toFixed(1)} s`);
  const maxAcked = filled.lastIds.ns0 ?? 0;
  const runs = [];
  for (let i = 0; i < restarts; i++) {
    const t0 = performance.now();
    const server = await startServer({
      label: `recovery-${i}`,
      dataDir,
      extraArgs: ['--checkpoint-records', String(bigCheckpointRecords)],
    });
    try {
      const first = await firstAllocate(server.target, performance.now() + 30_000);
      const metrics = await scrape(server);
      const replayed = metricSum(metrics, 'tally_recovery_records');
      const replayS = metricSum(metrics, 'tally_recovery_duration_seconds');
      const run = {
        restartToServingMs: first.atMs - t0,
        spawnToServingLineMs: server.servingMs - t0,
        replayedRecords: replayed,
        replaySeconds: replayS,
        replayRecordsPerS: replayed !== undefined && replayS ? replayed / replayS : undefined,
        firstIdAfterRestart: first.first,
        neverBackwards: first.first > maxAcked,
        peakRssBytes: server.peakRssBytes(),
        logLine: recoveryLogLine(server.logPath),
      };
      runs.push(run);
      rssRuns.push({
        run: `recovery restart ${i + 1}`,
        engine: 'wal',
        peakRssBytes: run.peakRssBytes,
      });
      log(
        `recovery ${i + 1}: restart-to-serving ${run.restartToServingMs.toFixed(0)} ms, replayed ${replayed} in ` +
          `${replayS} s, first id ${first.first} (> ${maxAcked}: ${run.neverBackwards})`,
      );
    } finally {
      // SIGKILL between restarts so the next start replays the same log; SIGTERM the last.
      await server.stop(i === restarts - 1 ? 'SIGTERM' : 'SIGKILL');
    }
  }
  return {
    records: filled.records,
    fillSeconds: filled.ms / 1000,
    maxAcknowledgedNs0: maxAcked,
    runs,
  };
}

// ---- output --------------------------------------------------------------------------------
function fmtInt(n) {
  return n === undefined || Number.isNaN(n) ? 'n/a' : Math.round(n).toLocaleString('en-US');
}
function fmtMs(n) {
  return n === undefined || Number.isNaN(n) ? 'n/a' : n < 10 ? n.toFixed(2) : n.toFixed(1);
}
function fmtMb(bytes) {
  return bytes === undefined ? 'n/a' : (bytes / 1024 / 1024).toFixed(0);
}
function fmtErrors(clientErrors, serverErrors, cancelledAtStop) {
  const parts = Object.entries(clientErrors ?? {}).map(([k, v]) => `${k}:${v}`);
  if (serverErrors) parts.push(`server non-OK:${serverErrors}`);
  const text = parts.length === 0 ? '0' : parts.join(' ');
  return cancelledAtStop ? `${text} (${cancelledAtStop} cancelled at stop)` : text;
}
function table(headers, rows) {
  const numeric = (cell) => /^([-\d.,×x ]+( ms| MB)?|n\/a|\d+(\.\d+)?×)$/.test(String(cell));
  const align = headers.map((_, i) => (rows.every((r) => numeric(r[i])) ? ' ---: ' : ' --- '));
  const lines = [`| ${headers.join(' | ')} |`, `|${align.join('|')}|`];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)];
}

function printClientRows(title, rows, note) {
  console.log(`\n### ${title}\n`);
  if (note) console.log(`${note}\n`);
  console.log(
    table(
      [
        'in flight',
        'count',
        'requests/s',
        'IDs/s',
        'p50 ms',
        'p99 ms',
        'max ms',
        'errors',
        'node peak RSS MB',
      ],
      rows.map((r) => [
        r.inFlight,
        r.count,
        fmtInt(r.reqPerS),
        fmtInt(r.idsPerS),
        fmtMs(r.p50Ms),
        fmtMs(r.p99Ms),
        fmtMs(r.maxMs),
        fmtErrors(r.clientErrors, r.serverErrors, r.cancelledAtStop),
        fmtMb(r.peakRssBytes),
      ]),
    ),
  );
}

function printH2loadRows(rows, title = 'Unary `Allocate`, h2load with raw gRPC frames') {
  console.log(`\n### ${title}\n`);
  console.log(
    'h2load -t 1, `-c` connections × `-m` streams = in flight. "acknowledged" is the server\'s count of ' +
      'allocations (Admin.Status last ID ÷ count, includes warm-up); "unconfirmed" = h2load 2xx not covered by it.\n',
  );
  console.log(
    table(
      [
        'in flight',
        'count',
        '-c×-m',
        'requests/s',
        'IDs/s',
        'p50 ms',
        'p99 ms',
        'max ms',
        'h2load 2xx',
        'acknowledged',
        'errors',
        'node peak RSS MB',
      ],
      rows.map((r) => [
        r.inFlight,
        r.count,
        `${r.connections}×${r.streams}`,
        fmtInt(r.reqPerS),
        fmtInt(r.idsPerS),
        fmtMs(r.p50Ms),
        fmtMs(r.p99Ms),
        fmtMs(r.maxMs),
        fmtInt(r.report.succeeded),
        fmtInt(r.acknowledged),
        fmtErrors(
          {
            ...(r.report.failed ? { failed: r.report.failed } : {}),
            ...(r.report.errored ? { errored: r.report.errored } : {}),
            ...(r.unconfirmed ? { unconfirmed: r.unconfirmed } : {}),
          },
          r.serverErrors,
          r.cancelledAtStop,
        ),
        fmtMb(r.peakRssBytes),
      ]),
    ),
  );
}

function machineInfo() {
  const cpus = os.cpus();
  let fsType;
  try {
    const mounts = fs
      .readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '));
    const tmp = fs.realpathSync(os.tmpdir());
    const best = mounts
      .filter((m) => m[1] && tmp.startsWith(m[1]))
      .sort((a, b) => b[1].length - a[1].length)[0];
    fsType = best ? `${best[2]} on ${best[0]} (${best[1]})` : undefined;
  } catch {
    fsType = undefined;
  }
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    loadAvgAtStart: os.loadavg().map((x) => +x.toFixed(2)),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    tmpdir: os.tmpdir(),
    tmpFs: fsType,
    h2load: h2loadVersion(),
  };
}

// ---- self-test of the pure helpers -------------------------------------------------------
function selfTest() {
  const check = (cond, msg) => {
    if (!cond) fail(`self-test failed: ${msg}`);
  };
  // The codec itself is unit-tested in src/core/grpc-wire.test.ts; here, h2load's body.
  const method = loadTallyProto()['tally.v1.Counter'].Allocate;
  for (const [ns, count] of [
    ['bench', 1],
    ['x'.repeat(64), 10_000],
  ]) {
    const frame = allocateRequestFrame(ns, count);
    const body = frame.subarray(5);
    check(frame[0] === 0 && frame.readUInt32BE(1) === body.length, `frame of ${ns}/${count}`);
    check(body.equals(method.requestSerialize({ namespace: ns, count })), `body of ${ns}/${count}`);
  }
  const h = newHistogram();
  for (let i = 1; i <= 10_000; i++) recordUs(h, i);
  for (const q of [0.5, 0.9, 0.99]) {
    const p = percentileUs(h, q);
    check(Math.abs(p - q * 10_000) / (q * 10_000) < 0.011, `percentile ${q}: ${p}`);
  }
  const merged = mergeHistograms([
    fromJson(
      JSON.parse(JSON.stringify({ counts: [...h.counts], n: h.n, sumUs: h.sumUs, maxUs: h.maxUs })),
    ),
    h,
  ]);
  check(
    merged.n === 20_000 && Math.abs(percentileUs(merged, 0.5) - 5000) < 55,
    'merged percentile',
  );
  check(
    percentileOfSorted([1, 2, 3, 4], 0.5) === 2 && percentileOfSorted([1, 2, 3, 4], 0.99) === 4,
    'exact percentile',
  );
  const report = parseH2loadReport(`finished in 5.00s, 12345.60 req/s, 1.23MB/s
requests: 61728 total, 61728 started, 61728 done, 61720 succeeded, 8 failed, 0 errored, 0 timeout
status codes: 61720 2xx, 0 3xx, 0 4xx, 8 5xx`);
  check(
    report.reqPerS === 12345.6 && report.succeeded === 61720 && report.failed === 8,
    'h2load report',
  );
  check(parseH2loadLog('1\t200\t30\n2\t200\t10\n3\t503\t5\n').join() === '10,30', 'h2load log');
  const prom = `tally_requests_total{method="Allocate",code="OK"} 10
tally_requests_total{method="AllocateStream",code="OK"} 5
tally_requests_total{method="Allocate",code="INVALID_ARGUMENT"} 2
tally_recovery_records 1000000`;
  check(metricSum(prom, 'tally_requests_total', { code: 'OK' }) === 15, 'metricSum labels');
  check(metricSum(prom, 'tally_recovery_records') === 1e6, 'metricSum plain');
  check(metricByCode(prom, 'tally_requests_total').INVALID_ARGUMENT === 2, 'metricByCode');
  console.log('bench self-test: ok');
}

// ---- main ----------------------------------------------------------------------------------
async function cleanup() {
  for (const [pid, proc] of children) {
    log(`stopping child ${pid}`);
    proc.kill('SIGKILL');
  }
  if (!flags.keep) {
    for (const dir of tempDirs) await fs.promises.rm(dir, { recursive: true, force: true });
  } else if (tempDirs.length > 0) {
    log(`kept temp dirs: ${tempDirs.join(' ')}`);
  }
}

function preflight() {
  if (!fs.existsSync(cliPath))
    fail(`bench: ${cliPath} is missing: run \`npm run build\` (or \`npm run bench\`).`);
  if (only.has('unary') && h2loadVersion() === undefined) {
    fail(
      'bench: h2load not found; it drives the unary benchmark with raw gRPC frames.\n' +
        '  Install it: apt-get update && apt-get install -y nghttp2-client   (macOS: brew install nghttp2)\n' +
        '  or skip that section: --only stream,grpcjs,baseline,recovery',
    );
  }
}

function printTargets(results) {
  const rows = [];
  const mark = (ok) => (ok === undefined ? '?' : ok ? 'met' : '**missed**');
  if (results.stream) {
    const best = Math.max(...results.stream.filter((r) => r.count === 1).map((r) => r.reqPerS));
    rows.push([
      'stream single-ID allocations/s, lean client (best in-flight level)',
      '≥ 25,000',
      fmtInt(best),
      mark(best >= 25_000),
    ]);
  }
  if (results.unary) {
    const best = Math.max(...results.unary.filter((r) => r.count === 1).map((r) => r.reqPerS));
    rows.push([
      'unary single-ID allocations/s, h2load (best level)',
      '≥ 12,000',
      fmtInt(best),
      mark(best >= 12_000),
    ]);
  }
  if (results.baseline) {
    rows.push([
      'group commit ÷ checkpoint-per-write, stream 64 in flight',
      '≥ 10×',
      `${results.baseline.ratio.toFixed(1)}×`,
      mark(results.baseline.ratio >= 10),
    ]);
  }
  if (results.recovery) {
    const rates = results.recovery.runs
      .map((r) => r.replayRecordsPerS)
      .filter((x) => x !== undefined);
    const rate = median(rates);
    rows.push([
      'WAL replay records/s (median)',
      '≥ 1,000,000',
      fmtInt(rate),
      mark(rates.length ? rate >= 1e6 : undefined),
    ]);
    const wall = median(results.recovery.runs.map((r) => r.restartToServingMs));
    rows.push([
      `restart-to-serving with ${fmtInt(results.recovery.records)} records since the snapshot (median)`,
      '≤ 1 s',
      `${fmtInt(wall)} ms`,
      mark(wall <= 1000),
    ]);
  }
  const rss = rssRuns.map((r) => r.peakRssBytes).filter((x) => x !== undefined);
  if (rss.length) {
    const peak = Math.max(...rss);
    const which = rssRuns.find((r) => r.peakRssBytes === peak);
    rows.push([
      `node peak RSS (VmHWM), max over runs (${which.run})`,
      '≤ 200 MB',
      `${fmtMb(peak)} MB`,
      mark(peak <= 200 * 1024 * 1024),
    ]);
  }
  if (results.replicatedStream) {
    const r = results.replicatedStream.find((x) => x.inFlight === 256 && x.count === 1);
    rows.push([
      'replicated stream single-ID allocations/s, 256 in flight',
      '≥ 29,000',
      r ? fmtInt(r.reqPerS) : '-',
      mark(r ? r.reqPerS >= 29_000 : undefined),
    ]);
  }
  for (const level of results.redis?.levels ?? []) {
    const redis = level.redis;
    const ratioRow = (key, what, target, min) => {
      if (!level[key]) return;
      const ratio = level[key].perS / redis.perS;
      rows.push([
        `${what} at ${level.clients}: Tally ÷ Redis increments/s (medians)`,
        target,
        `${ratio.toFixed(2)}×`,
        mark(ratio >= min),
      ]);
    };
    const p99Row = (key, what) => {
      if (!level[key]) return;
      rows.push([
        `${what} at ${level.clients}: p99 ms, Tally vs Redis (medians)`,
        'no worse',
        `${fmtMs(level[key].p99Ms)} vs ${fmtMs(redis.p99Ms)}`,
        mark(level[key].p99Ms <= redis.p99Ms),
      ]);
    };
    if (level.clients === 50) {
      ratioRow('library', 'Client library', '≥ 1.5×', 1.5);
      p99Row('library', 'Client library');
    }
    ratioRow('unary', 'Unary from h2load', '≥ 1.0×', 1.0);
    if (level.unary?.gcMaxMs !== undefined) {
      rows.push([
        `Unary from h2load at ${level.clients}: longest GC pause in the servers' trace`,
        '≤ 20 ms',
        `${fmtMs(level.unary.gcMaxMs)} ms`,
        mark(level.unary.gcMaxMs <= 20),
      ]);
    }
    if (level.clients === 50) {
      ratioRow('stream', 'Lean load generator (server capacity)', '≥ 1.25×', 1.25);
      p99Row('stream', 'Lean load generator (server capacity)');
    }
  }
  console.log('\n### Targets (issues 2, 3 and 12)\n');
  console.log(table(['figure', 'target', 'measured', 'result'], rows));
}

function printHeader(machine, command) {
  console.log('## Tally benchmark\n');
  console.log(`- command: \`${command}\``);
  console.log(
    `- machine: ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.os}; ` +
      `load average at start ${machine.loadAvgAtStart.join(' ')}`,
  );
  console.log(
    `- node ${machine.node}; data dirs under ${machine.tmpdir} (${machine.tmpFs ?? 'unknown fs'}); ${machine.h2load ?? 'no h2load'}`,
  );
  console.log(
    `- each cell: fresh \`tally serve\` on its own temp dir, ${warmupMs / 1000} s warm-up + ${durationMs / 1000} s measured; ` +
      `load generators on the same box; every allocation is fsynced before its reply`,
  );
  if (machine.loadAvgAtStart[0] > 0.5) {
    log(
      `warning: load average ${machine.loadAvgAtStart[0]}: other work on this box skews the figures`,
    );
  }
}

function printBaseline(b) {
  console.log(
    '\n### Group commit vs checkpoint-per-write baseline (stream, 64 in flight, count 1, lean client)\n',
  );
  console.log(
    table(
      ['engine', 'round', 'requests/s', 'p50 ms', 'p99 ms', 'errors'],
      b.rows.map((r) => [
        r.engine === 'wal'
          ? 'WAL + group commit'
          : 'baseline: in-place table, pwrite + fdatasync per allocation',
        r.round,
        fmtInt(r.reqPerS),
        fmtMs(r.p50Ms),
        fmtMs(r.p99Ms),
        fmtErrors(r.clientErrors, r.serverErrors, r.cancelledAtStop),
      ]),
    ),
  );
  console.log(
    `\nMedians: WAL ${fmtInt(b.walMedian)}/s, baseline ${fmtInt(b.baselineMedian)}/s → ` +
      `group commit / baseline: **${b.ratio.toFixed(1)}×**`,
  );
  const ctx = b.context;
  console.log('\nContext, same disk, no gRPC (in-process, 64 in flight where it applies):\n');
  console.log(
    table(
      ['measurement', 'operations/s'],
      [
        [
          'device: serial 128-byte pwrite + fdatasync (ceiling of any checkpoint-per-write)',
          fmtInt(ctx.devicePerS),
        ],
        ['baseline engine in-process (openBaselineNode)', fmtInt(ctx.baselineInProcessPerS)],
        ['WAL engine in-process (openNode)', fmtInt(ctx.walInProcessPerS)],
      ],
    ),
  );
}

function printRecovery(rec) {
  console.log(`\n### Recovery (${fmtInt(rec.records)} records since the last snapshot)\n`);
  console.log(
    `Data dir built in-process through \`openNode\` in ${rec.fillSeconds.toFixed(1)} s, then SIGKILLed; ` +
      'each restart is SIGKILLed too so the next one replays the same log.\n',
  );
  const headers = [
    'restart',
    'records replayed',
    'replay s',
    'replay records/s',
    'spawn → serving line ms',
    'spawn → first Allocate reply ms',
    'first ID > acknowledged',
    'node peak RSS MB',
  ];
  const rows = rec.runs.map((r, i) => [
    i + 1,
    fmtInt(r.replayedRecords),
    r.replaySeconds === undefined ? 'n/a' : r.replaySeconds.toFixed(3),
    fmtInt(r.replayRecordsPerS),
    fmtInt(r.spawnToServingLineMs),
    fmtInt(r.restartToServingMs),
    r.neverBackwards ? 'yes' : '**NO**',
    fmtMb(r.peakRssBytes),
  ]);
  console.log(table(headers, rows));
}

function printRss() {
  console.log('\n### Node peak RSS per run (VmHWM read just before stopping)\n');
  console.log(
    table(
      ['run', 'engine', 'peak RSS MB'],
      rssRuns.map((r) => [r.run, r.engine, fmtMb(r.peakRssBytes)]),
    ),
  );
}

/**
 * Redis 7 (primary + replica, appendfsync always, INCR + WAIT 1 1000) beside a replicated
 * Tally pair at the same concurrency, for each level of --redis-clients. The two alternate
 * (R T R T …, --redis-rounds times) so that drift in what this shared box delivers hits both;
 * the comparison is of the per-system medians (rate and p99 each).
 */
/** Load processes on each side of the Redis comparison: the same for both (one is faster on 2 cores). */
const redisCompareProcesses = 1;

/** The client paths compared with Redis, in the order each round runs them. */
const redisComparePaths = [
  {
    key: 'library',
    label: 'Tally client library (TallyClient, `allocate()` loops)',
    mode: 'library',
  },
  { key: 'unary', label: 'Tally unary `Allocate` (h2load, 1 connection)', h2load: true },
  { key: 'grpcjs', label: 'Tally `AllocateStream`, plain grpc-js client', mode: 'grpcjs-stream' },
  {
    key: 'stream',
    label: 'Tally `AllocateStream`, lean load generator (server capacity)',
    mode: 'stream',
  },
];

async function redisSection() {
  const levels = flags['redis-clients'].split(',').map(Number);
  const rounds = Number(flags['redis-rounds'] ?? (flags.quick ? 1 : 5));
  const paths = redisComparePaths.filter(
    (p) => !flags['redis-paths'] || flags['redis-paths'].split(',').includes(p.key),
  );
  const levelsOut = [];
  for (const clients of levels) {
    const runs = { redis: [] };
    for (const p of paths) runs[p.key] = [];
    for (let round = 1; round <= rounds; round++) {
      try {
        const r = await runRedisBench({
          clients,
          durationMs,
          warmupMs,
          workers: redisCompareProcesses,
          log,
        });
        runs.redis.push({ round, ...pick(r, 'incrPerSec') });
      } catch (err) {
        if (err.code !== 'REDIS_MISSING') throw err;
        log(err.message);
        return { skipped: err.message };
      }
      for (const p of paths) {
        const t = await cell(
          `replicated ${p.key} ${clients}x1 (vs redis) #${round}`,
          'wal',
          (s) =>
            p.h2load
              ? runH2load(s, { inFlight: clients, count: 1, connections: 1 })
              : runClientLoad(s, {
                  mode: p.mode,
                  inFlight: clients,
                  count: 1,
                  processes: redisCompareProcesses,
                }),
          { replicated: true, nodeArgs: ['--trace-gc'] },
        );
        runs[p.key].push({
          round,
          ...pick(t, 'reqPerS'),
          errors: t.serverErrors,
          gcMaxMs: Math.max(t.gc.primary.maxMs, t.gc.standby?.maxMs ?? 0),
        });
      }
    }
    const level = { clients, runs, redis: medians(runs.redis) };
    for (const p of paths) level[p.key] = medians(runs[p.key]);
    levelsOut.push(level);
  }
  return { rounds, levels: levelsOut, paths: paths.map((p) => p.key) };
}

function pick(r, rateKey) {
  return { perS: r[rateKey], p50Ms: r.p50Ms, p99Ms: r.p99Ms };
}

/** Per-figure medians over rounds (rate, p50 and p99 each on their own). */
function medians(runs) {
  return {
    perS: median(runs.map((r) => r.perS)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    // The worst over the rounds, not a median: one long pause is what a target forbids.
    gcMaxMs: runs.some((r) => r.gcMaxMs !== undefined)
      ? Math.max(...runs.map((r) => r.gcMaxMs ?? 0))
      : undefined,
  };
}

function printRedis(r) {
  console.log('\n### Tally (replicated) beside Redis 7 (primary + replica)\n');
  if (r.skipped) {
    console.log(`Skipped: ${r.skipped}\n`);
    return;
  }
  console.log(
    `Same number of concurrent requests and one load process (${redisCompareProcesses}) on each side, ` +
      'the same warm-up and measured time. Redis: appendonly yes + appendfsync always on both, ' +
      'every client `INCR` then `WAIT 1 1000` (acknowledged once the replica has received it; ' +
      "Redis 7.0 WAIT does not wait for the replica's fsync). Tally: a fresh primary + standby " +
      "per cell, acknowledged after both nodes' fdatasync. Paths, users' first: the client " +
      'library (one TallyClient, that many `allocate()` loops), unary `Allocate` from h2load on ' +
      'one connection (as Go/Java/Python clients call it), a plain grpc-js `AllocateStream` ' +
      'client, and the lean load generator (server capacity: no user has it). Each round runs ' +
      `Redis then every path; ${r.rounds} round(s); the medians rows take the median of each ` +
      'column on its own; the GC column is the longest pause either node logged (--trace-gc), ' +
      'the worst over the rounds.\n',
  );
  const rows = [];
  const vs = (perS, redis) => `${(perS / redis.perS).toFixed(2)}×`;
  const paths = redisComparePaths.filter((p) => r.paths.includes(p.key));
  for (const level of r.levels) {
    const row = (system, x, redis) => [
      system,
      level.clients,
      fmtInt(x.perS),
      fmtMs(x.p50Ms),
      fmtMs(x.p99Ms),
      redis ? vs(x.perS, redis) : '',
      x.gcMaxMs === undefined ? '' : fmtMs(x.gcMaxMs),
    ];
    rows.push(row('**Redis 7 INCR + WAIT 1 1000, median**', level.redis));
    for (const p of paths) rows.push(row(`**${p.label}, median**`, level[p.key], level.redis));
    for (let i = 0; i < level.runs.redis.length; i++) {
      const red = level.runs.redis[i];
      rows.push(row(`Redis, round ${red.round}`, red));
      for (const p of paths) {
        const t = level.runs[p.key][i];
        if (t) rows.push(row(`${p.key}, round ${t.round}`, t, red));
      }
    }
  }
  console.log(
    table(
      [
        'system',
        'concurrent',
        'increments/s',
        'p50 ms',
        'p99 ms',
        'vs Redis',
        'longest GC pause, primary or standby, ms',
      ],
      rows,
    ),
  );
}

async function main() {
  if (flags['self-test']) return selfTest();
  preflight();
  const machine = machineInfo();
  const command = `node scripts/bench.mjs ${process.argv.slice(2).join(' ')}`.trim();
  printHeader(machine, command);
  const results = { machine, command, startedAt: new Date().toISOString(), durationMs, warmupMs };
  if (only.has('stream')) {
    results.stream = await streamSection();
    printClientRows(
      '`AllocateStream` (bidi, pipelined), lean client processes (node:http2, no grpc-js)',
      results.stream,
      `${workersMax} client processes × 1 http2 session × 1 stream each, in-flight split between ` +
        'them; the client is `node:http2` with hand-rolled protobuf, because grpc-js clients ' +
        'cost so much CPU per message that they, not the node, limit the rate on a small box ' +
        '(grpc-js stream figures: the grpcjs section).',
    );
  }
  if (only.has('unary')) {
    results.unary = await h2loadSection();
    printH2loadRows(results.unary);
  }
  if (only.has('grpcjs')) {
    results.grpcjsUnary = await grpcjsUnarySection();
    printClientRows(
      'Unary `Allocate`, grpc-js client processes (for comparison)',
      results.grpcjsUnary,
      `${workersMax} client processes.`,
    );
    results.grpcjsStream = await grpcjsStreamSection();
    printClientRows(
      '`AllocateStream`, grpc-js client processes (for comparison with the lean client)',
      results.grpcjsStream,
      `${workersMax} grpc-js client processes × 1 stream each, in-flight split between them.`,
    );
  }
  if (only.has('baseline')) {
    results.baseline = await baselineSection();
    printBaseline(results.baseline);
  }
  if (only.has('recovery')) {
    results.recovery = await recoverySection();
    printRecovery(results.recovery);
  }
  if (only.has('replicated')) {
    results.replicatedStream = await streamSection(true);
    printClientRows(
      "Replicated: `AllocateStream` to a primary that acknowledges after its own and the standby's fdatasync",
      results.replicatedStream,
      `Primary, standby and ${workersMax} lean client processes (node:http2, no grpc-js) on the same machine.`,
    );
    results.replicatedUnary = await h2loadSection([{ inFlight: 256, count: 1 }], true);
    printH2loadRows(results.replicatedUnary, 'Replicated: unary `Allocate`, h2load');
  }
  if (only.has('redis')) {
    results.redis = await redisSection();
    printRedis(results.redis);
  }
  printRss();
  printTargets(results);
  results.rss = rssRuns;
  results.finishedAt = new Date().toISOString();
  await fs.promises.mkdir(path.dirname(flags.json), { recursive: true });
  await fs.promises.writeFile(flags.json, `${JSON.stringify(results, null, 2)}\n`);
  log(`results written to ${flags.json}`);
}

process.on('SIGINT', () => {
  cleanup().finally(() => process.exit(130));
});

main()
  .then(cleanup)
  .catch(async (err) => {
    process.stderr.write(`${err?.stack ?? err}\n`);
    await cleanup();
    process.exit(1);
  });
