// The Redis 7 comparison behind scripts/bench-redis.mjs, exported so another script can run it
// with runRedisBench(). Redis is set up as users would for a durable counter: primary +
// replica, both `appendonly yes` + `appendfsync always`, every client doing INCR then
// `WAIT 1 1000`. No npm dependencies: the few RESP frames we need are spoken over node:net.
//
// Load-worker protocol (IPC, worker = this repo's bench-redis.mjs run with `workerFlag`):
//   parent → {type:'run', port, clients, pipeline}   child → {type:'ready'} once connected
//   parent → {type:'go', startAt, measureStart, measureEnd}   (epoch ms, shared by processes)
//   child  → {type:'result', issued, measured, notReplicated, notReplicatedTotal, latenciesUs}
import { fork, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const workerFlag = '--redis-bench-worker';
const cliPath = fileURLToPath(new URL('./bench-redis.mjs', import.meta.url));
const counterKey = 'bench:counter';
const startupTimeoutMs = 20_000;
const stopTimeoutMs = 5_000;

// ---- finding redis-server ----------------------------------------------------------------
export const redisMissingMessage =
  'bench-redis: redis-server not found; install it with: apt-get install -y redis-server ' +
  '(Debian/Ubuntu, gives Redis 7 on bookworm) or brew install redis (macOS). ' +
  'Looked on PATH and at /usr/bin/redis-server.';

/** The redis-server binary, or an Error with code REDIS_MISSING. */
export function findRedisServer() {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const candidates = [...dirs.map((d) => path.join(d, 'redis-server')), '/usr/bin/redis-server'];
  for (const file of candidates) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here; try the next one
    }
  }
  throw Object.assign(new Error(redisMissingMessage), { code: 'REDIS_MISSING' });
}

// ---- RESP --------------------------------------------------------------------------------
class RespError extends Error {}

function encodeCommand(args) {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return out;
}

/** Parses one RESP2 reply at `pos`: {value, next}, or null while it is still incomplete. */
export function parseReply(buf, pos) {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return null;
  const line = buf.toString('utf8', pos + 1, eol);
  const next = eol + 2;
  switch (buf[pos]) {
    case 0x2b: // '+'
      return { value: line, next };
    case 0x2d: // '-'
      return { value: new RespError(`redis: ${line}`), next };
    case 0x3a: // ':'
      return { value: Number(line), next };
    case 0x24: // '$'
      return parseBulk(buf, Number(line), next);
    case 0x2a: // '*'
      return parseArray(buf, Number(line), next);
    default:
      throw new Error(`bench-redis: unexpected RESP type byte ${buf[pos]}`);
  }
}

function parseBulk(buf, len, start) {
  if (len < 0) return { value: null, next: start };
  if (buf.length < start + len + 2) return null;
  return { value: buf.toString('utf8', start, start + len), next: start + len + 2 };
}

function parseArray(buf, n, start) {
  if (n < 0) return { value: null, next: start };
  const value = [];
  let next = start;
  for (let i = 0; i < n; i++) {
    const r = parseReply(buf, next);
    if (r === null) return null;
    value.push(r.value);
    next = r.next;
  }
  return { value, next };
}

/** One TCP connection; replies are matched to commands in order (Redis answers in order). */
class RespConnection {
  static connect(port) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RespConnection(socket));
      });
    });
  }

  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.pending = [];
    this.failure = null;
    // Small request/reply frames: Nagle would add delay to every round trip.
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('bench-redis: connection to redis closed')));
  }

  command(...args) {
    return this.pipeline([args])[0];
  }

  /** Sends several commands in one write; one promise per reply. */
  pipeline(commands) {
    if (this.failure) return commands.map(() => Promise.reject(this.failure));
    const replies = commands.map(
      () => new Promise((resolve, reject) => this.pending.push({ resolve, reject })),
    );
    this.socket.write(commands.map(encodeCommand).join(''));
    return replies;
  }

  onData(chunk) {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let pos = 0;
    for (let r = parseReply(this.buf, pos); r !== null; r = parseReply(this.buf, pos)) {
      pos = r.next;
      const waiter = this.pending.shift();
      if (waiter === undefined) throw new Error('bench-redis: reply without a command');
      if (r.value instanceof RespError) waiter.reject(r.value);
      else waiter.resolve(r.value);
    }
    this.buf = this.buf.subarray(pos);
  }

  fail(err) {
    if (this.failure) return;
    this.failure = err;
    for (const waiter of this.pending.splice(0)) waiter.reject(err);
  }

  close() {
    this.fail(new Error('bench-redis: connection closed by the benchmark'));
    this.socket.destroy();
  }
}

/** INFO text → {field: value}. */
export function parseInfo(text) {
  const out = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

// ---- processes and temp dirs ---------------------------------------------------------------
// Last resort if the process exits without our cleanup (uncaught error, process.exit in a
// caller): kill what is still running and drop the temp dirs, synchronously.
const liveChildren = new Set();
const liveDirs = new Set();
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
  for (const dir of liveDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function hasExited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stopChild(child) {
  if (!hasExited(child)) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const inTime = await Promise.race([exited.then(() => true), sleep(stopTimeoutMs, false)]);
    if (!inTime && !hasExited(child)) {
      child.kill('SIGKILL');
      await exited;
    }
  }
  liveChildren.delete(child);
}

/** Everything one run started, so that one idempotent cleanup() can undo it. */
function newRun() {
  const servers = [];
  const workers = [];
  const conns = [];
  let cleaning = null;
  const cleanup = () => {
    cleaning ??= (async () => {
      for (const c of conns) c.close();
      await Promise.all([...workers, ...servers.map((s) => s.child)].map(stopChild));
      for (const s of servers) {
        fs.rmSync(s.dir, { recursive: true, force: true });
        liveDirs.delete(s.dir);
      }
    })();
    return cleaning;
  };
  return { servers, workers, conns, cleanup };
}

async function startRedis(run, bin, name, primaryPort) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tally-bench-redis-${name}-`));
  liveDirs.add(dir);
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no'];
  args.push('--daemonize', 'no', '--dir', dir, '--save', '');
  args.push('--appendonly', 'yes', '--appendfsync', 'always');
  // Only shortens the initial full sync (the default waits 5 s for more replicas to join).
  args.push('--repl-diskless-sync-delay', '0');
  if (primaryPort !== undefined) args.push('--replicaof', '127.0.0.1', String(primaryPort));
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  const server = { name, port, dir, child, output: '', spawnError: null };
  run.servers.push(server);
  // Keep the log's tail for the error message if it dies during startup.
  const keep = (chunk) => (server.output = (server.output + chunk).slice(-4000));
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  child.on('error', (err) => (server.spawnError = err));
  return server;
}

function assertAlive(server) {
  if (server.spawnError) throw server.spawnError;
  if (hasExited(server.child)) {
    const how = server.child.signalCode ?? `code ${server.child.exitCode}`;
    throw new Error(`bench-redis: ${server.name} redis-server exited (${how}):\n${server.output}`);
  }
}

async function waitFor(what, probe) {
  const deadline = Date.now() + startupTimeoutMs;
  for (;;) {
    const result = await probe();
    if (result) return result;
    if (Date.now() > deadline) {
      throw new Error(
        `bench-redis: gave up after ${startupTimeoutMs / 1000} s waiting for ${what}`,
      );
    }
    await sleep(100);
  }
}

/** A connection once the server answers PING (not -LOADING). */
async function connectWhenUp(run, server) {
  const conn = await waitFor(`${server.name} on port ${server.port}`, async () => {
    assertAlive(server);
    const c = await RespConnection.connect(server.port).catch(() => null);
    if (c === null) return null;
    const pong = await c.command('PING').catch(() => null);
    if (pong === 'PONG') return c;
    c.close();
    return null;
  });
  run.conns.push(conn);
  return conn;
}

// The initial full sync forks an RDB save on the primary and, with appendonly, an AOF rewrite
// on the replica; both compete for CPU and disk, so measuring starts only after them.
function quiet(info) {
  return ['loading', 'rdb_bgsave_in_progress', 'aof_rewrite_in_progress', 'aof_rewrite_scheduled']
    .map((k) => info[k])
    .every((v) => v === '0');
}

async function waitForReplication(run, primaryConn, replicaConn) {
  await waitFor(
    'the replica to sync (master_link_status:up) and background saves to end',
    async () => {
      for (const s of run.servers) assertAlive(s);
      const pri = parseInfo(await primaryConn.command('INFO'));
      const rep = parseInfo(await replicaConn.command('INFO'));
      const online = pri.connected_slaves === '1' && /state=online/.test(pri.slave0 ?? '');
      return rep.master_link_status === 'up' && online && quiet(pri) && quiet(rep);
    },
  );
}

// ---- load workers: parent side ------------------------------------------------------------
/** The next IPC message of `type` from a worker; rejects on its error report or early exit. */
function nextMessage(worker, type, timeoutMs) {
  return new Promise((resolve, reject) => {
    const finish = (fn, arg) => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('exit', onExit);
      fn(arg);
    };
    const onMessage = (msg) => {
      if (msg.type === type) finish(resolve, msg);
      else if (msg.type === 'error')
        finish(reject, new Error(`bench-redis: worker: ${msg.message}`));
    };
    const onExit = (code, signal) =>
      finish(reject, new Error(`bench-redis: load worker exited early (${signal ?? code})`));
    const timer = setTimeout(
      () => finish(reject, new Error(`bench-redis: no '${type}' from a load worker`)),
      timeoutMs,
    );
    worker.on('message', onMessage);
    worker.on('exit', onExit);
    if (hasExited(worker)) onExit(worker.exitCode, worker.signalCode);
  });
}

function splitEvenly(total, parts) {
  return Array.from({ length: parts }, (_, i) => Math.floor((total + i) / parts));
}

async function runLoad(run, o, port) {
  const shares = splitEvenly(o.clients, Math.min(o.workers, o.clients));
  const workers = shares.map(() =>
    // stdout ignored: only the parent writes the table there.
    fork(cliPath, [workerFlag], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }),
  );
  for (const w of workers) {
    liveChildren.add(w);
    run.workers.push(w);
  }
  const ready = workers.map((w) => nextMessage(w, 'ready', startupTimeoutMs));
  workers.forEach((w, i) =>
    w.send({ type: 'run', port, clients: shares[i], pipeline: o.pipeline }),
  );
  await Promise.all(ready);
  // One shared schedule: the wall clock is common to all processes on the box.
  const startAt = performance.timeOrigin + performance.now() + 100;
  const measureStart = startAt + o.warmupMs;
  const measureEnd = measureStart + o.durationMs;
  const results = workers.map((w) => nextMessage(w, 'result', measureEnd - startAt + 30_000));
  for (const w of workers) w.send({ type: 'go', startAt, measureStart, measureEnd });
  return Promise.all(results);
}

// ---- load workers: worker side --------------------------------------------------------------
function nowEpochMs() {
  return performance.timeOrigin + performance.now();
}

/** One client: INCR, then WAIT 1 1000 for the replica's ack; latency = INCR sent → WAIT reply. */
async function clientLoop(conn, stats, go, pipeline) {
  while (nowEpochMs() < go.measureEnd) {
    const t0 = performance.now();
    stats.issued++;
    let incr, acked;
    if (pipeline) {
      [incr, acked] = await Promise.all(
        conn.pipeline([
          ['INCR', counterKey],
          ['WAIT', '1', '1000'],
        ]),
      );
    } else {
      incr = await conn.command('INCR', counterKey);
      acked = await conn.command('WAIT', '1', '1000');
    }
    const t1 = performance.now();
    if (typeof incr !== 'number' || typeof acked !== 'number') {
      throw new Error(`bench-redis: unexpected replies INCR=${incr} WAIT=${acked}`);
    }
    if (acked < 1) stats.notReplicatedTotal++;
    const at = performance.timeOrigin + t1;
    if (at < go.measureStart || at >= go.measureEnd) continue;
    // A not-replicated increment still cost its client this long, so it stays in the latencies.
    stats.latenciesUs.push(Math.round((t1 - t0) * 1000));
    if (acked >= 1) stats.measured++;
    else stats.notReplicated++;
  }
}

async function drive(conns, go, pipeline) {
  await sleep(Math.max(0, go.startAt - nowEpochMs()));
  const stats = { issued: 0, measured: 0, notReplicated: 0, notReplicatedTotal: 0 };
  stats.latenciesUs = [];
  await Promise.all(conns.map((c) => clientLoop(c, stats, go, pipeline)));
  for (const c of conns) c.close();
  return stats;
}

/** Entry point of a forked load worker (bench-redis.mjs started with `workerFlag`). */
export function runRedisWorker() {
  const die = (err) => {
    process.send({ type: 'error', message: String(err?.stack ?? err) }, () => process.exit(1));
  };
  let cfg;
  let conns;
  process.on('message', (msg) => {
    if (msg.type === 'run') {
      cfg = msg;
      const connecting = Array.from({ length: msg.clients }, () =>
        RespConnection.connect(msg.port),
      );
      Promise.all(connecting).then((c) => {
        conns = c;
        process.send({ type: 'ready' });
      }, die);
    } else if (msg.type === 'go') {
      drive(conns, msg, cfg.pipeline).then((stats) => {
        process.send({ type: 'result', ...stats }, () => process.exit(0));
      }, die);
    }
  });
  // The parent is gone (killed or interrupted): nothing left to report to.
  process.on('disconnect', () => process.exit(0));
}

// ---- the benchmark ---------------------------------------------------------------------------
/** Nearest-rank percentile of sorted samples. */
function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
}

function usageError(msg) {
  return Object.assign(new Error(`bench-redis: ${msg}`), { code: 'USAGE' });
}

function settings(opts) {
  const o = {
    clients: opts.clients ?? 50,
    durationMs: opts.durationMs ?? 5000,
    warmupMs: opts.warmupMs ?? 1000,
    workers: opts.workers ?? 2,
    pipeline: opts.pipeline ?? false,
    log: opts.log ?? (() => {}),
  };
  for (const k of ['clients', 'workers']) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw usageError(`${k} must be an integer >= 1`);
  }
  if (!(o.durationMs > 0) || !(o.warmupMs >= 0)) {
    throw usageError('duration must be > 0 and warm-up >= 0');
  }
  return o;
}

function summarize(o, parts, extra) {
  const latencies = Float64Array.from(parts.flatMap((p) => p.latenciesUs)).sort();
  const sum = (k) => parts.reduce((acc, p) => acc + p[k], 0);
  const ms = (us) => us / 1000;
  return {
    clients: o.clients,
    workers: Math.min(o.workers, o.clients),
    pipeline: o.pipeline,
    warmupMs: o.warmupMs,
    durationMs: o.durationMs,
    incrPerSec: sum('measured') / (o.durationMs / 1000),
    p50Ms: ms(percentile(latencies, 0.5)),
    p99Ms: ms(percentile(latencies, 0.99)),
    maxMs: ms(latencies.length === 0 ? NaN : latencies[latencies.length - 1]),
    measured: sum('measured'),
    notReplicated: sum('notReplicated'),
    notReplicatedTotal: sum('notReplicatedTotal'),
    total: sum('issued'),
    ...extra,
  };
}

async function measure(bin, o, run) {
  const primary = await startRedis(run, bin, 'primary');
  const replica = await startRedis(run, bin, 'replica', primary.port);
  const pc = await connectWhenUp(run, primary);
  const rc = await connectWhenUp(run, replica);
  await waitForReplication(run, pc, rc);
  const redisVersion = parseInfo(await pc.command('INFO', 'server')).redis_version;
  o.log(`bench-redis: redis ${redisVersion}: primary :${primary.port}, replica :${replica.port}`);
  const secs = `${o.warmupMs / 1000} s warm-up + ${o.durationMs / 1000} s`;
  o.log(`bench-redis: ${o.clients} clients in ${o.workers} worker process(es), ${secs}`);
  const parts = await runLoad(run, o, primary.port);
  const counterValue = Number(await pc.command('GET', counterKey));
  // Let the replica catch up before reading its copy (every acked INCR is there already).
  await pc.command('WAIT', '1', '5000');
  const replicaCounterValue = Number(await rc.command('GET', counterKey));
  const result = summarize(o, parts, { redisVersion, counterValue, replicaCounterValue });
  result.counterMatches = counterValue === result.total;
  return result;
}

/**
 * Runs the comparison: starts a primary and a replica on free 127.0.0.1 ports in fresh temp
 * dirs, drives `clients` INCR + WAIT loops from `workers` forked processes, stops everything.
 * Throws an Error with code 'REDIS_MISSING' when redis-server is not installed.
 */
export async function runRedisBench(opts = {}) {
  const o = settings(opts);
  const bin = findRedisServer();
  const run = newRun();
  // Ctrl-C must not leave redis-server processes or temp dirs behind.
  const onSigint = () => {
    o.log('bench-redis: interrupted; stopping redis-server');
    void run.cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSigint);
  try {
    return await measure(bin, o, run);
  } finally {
    await run.cleanup();
    process.off('SIGINT', onSigint);
  }
}
