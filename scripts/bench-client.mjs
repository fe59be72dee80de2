// A load-generator worker, forked by scripts/bench.mjs. Protocol over the IPC channel:
//   parent → {type:'run', mode:'stream'|'grpcjs-stream'|'unary'|'library', target, namespace, count,
//             inFlight, streams}
//   child  → {type:'ready'} once connected
//   parent → {type:'go', warmupMs, durationMs}
//   child  → {type:'result', ok, ids, errors, windowMs, histogram} after the in-flight drain
// or, for building the recovery data dir in-process (no gRPC):
//   parent → {type:'fill', distDir, id, dataDir, records, inFlight, namespaces}
//   child  → {type:'filled', records, ms, lastIds}; the parent then SIGKILLs it, so the node
//            never gets a chance to checkpoint on close.
// Context rows for the baseline comparison (no gRPC at all):
//   parent → {type:'inproc', distDir, engine:'wal'|'baseline', dataDir, inFlight, durationMs}
//   parent → {type:'device', file, durationMs}: serial 128-byte pwrite + fdatasync
//   child  → {type:'rate', perS}
// Closed loop: every completion immediately issues the next request, keeping `inFlight`
// requests outstanding; latency is measured per request from send to reply.
// Modes: 'stream' is AllocateStream from the lean load generator below (one node:http2
// session, the Counter codec of src/core/grpc-wire.ts); 'library' is the client library's
// TallyClient, as users call it; 'grpcjs-stream' is AllocateStream from a grpc-js client
// and 'unary' unary Allocate from a grpc-js client, both kept for comparison (grpc-js costs so
// much CPU per message that on a small box the generator, not the server, limits the rate).
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import {
  allocateRequestFrameMax,
  decodeAllocateResponse,
  FrameReader,
  histogramToJson,
  loadTallyProto,
  newAllocateResponse,
  newHistogram,
  recordUs,
  repoRoot,
  writeAllocateRequestFrame,
} from './bench-lib.mjs';

let run = null;

process.on('message', (msg) => {
  if (msg.type === 'run') run = startRun(msg);
  else if (msg.type === 'go') run.go(msg);
  else if (msg.type === 'fill') fill(msg).catch(die);
  else if (msg.type === 'inproc') inProcess(msg).catch(die);
  else if (msg.type === 'device') device(msg);
  else if (msg.type === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));

function die(err) {
  process.send({ type: 'error', message: String(err?.stack ?? err) });
  process.exit(1);
}

function startRun(cfg) {
  const state = {
    cfg,
    close: null,
    measuring: false,
    stopping: false,
    outstanding: 0,
    ok: 0,
    ids: 0,
    errors: {},
    hist: newHistogram(),
    onDrained: null,
  };
  let start;
  if (cfg.mode === 'stream') start = connectLean(state);
  else if (cfg.mode === 'grpcjs-stream' || cfg.mode === 'unary') start = connectGrpcjs(state);
  else if (cfg.mode === 'library') start = connectLibrary(state);
  else die(new Error(`unknown mode ${cfg.mode}`));
  return {
    go: ({ warmupMs, durationMs }) => {
      start();
      setTimeout(() => {
        state.measuring = true;
        const startMs = performance.now();
        setTimeout(() => {
          state.measuring = false;
          const windowMs = performance.now() - startMs;
          state.stopping = true;
          state.onDrained = () => report(state, windowMs);
          if (state.outstanding === 0) state.onDrained();
        }, durationMs);
      }, warmupMs);
    },
  };
}

function report(state, windowMs) {
  process.send({
    type: 'result',
    ok: state.ok,
    ids: state.ids,
    errors: state.errors,
    windowMs,
    histogram: histogramToJson(state.hist),
  });
  state.close();
}

function completed(state, startMs, err, count) {
  state.outstanding--;
  if (state.measuring) {
    if (err === null) {
      state.ok++;
      state.ids += count;
      recordUs(state.hist, (performance.now() - startMs) * 1000);
    } else {
      state.errors[err] = (state.errors[err] ?? 0) + 1;
    }
  }
  if (state.stopping) {
    if (state.outstanding === 0) state.onDrained?.();
    return false;
  }
  return true;
}

// ---- lean AllocateStream client: node:http2 + hand-rolled protobuf -------------------------
const allocateStreamHeaders = {
  ':method': 'POST',
  ':path': '/tally.v1.Counter/AllocateStream',
  'content-type': 'application/grpc',
  te: 'trailers',
};

/** One http2 session; says ready once connected. Returns the function that starts the load. */
function connectLean(state) {
  const { cfg } = state;
  const session = http2.connect(`http://${cfg.target}`);
  let ready = false;
  const timer = setTimeout(
    () => die(new Error(`no http2 session to ${cfg.target} in 10 s`)),
    10_000,
  );
  session.once('connect', () => {
    clearTimeout(timer);
    ready = true;
    process.send({ type: 'ready' });
  });
  // After ready, a session error closes its streams, and each fails what it had out.
  session.on('error', (err) => {
    if (!ready) die(err);
  });
  state.close = () => session.close();
  return () => {
    const streams = Math.min(Math.max(1, cfg.streams), cfg.inFlight);
    const ns = Buffer.from(cfg.namespace, 'utf8');
    for (let s = 0; s < streams; s++) {
      const share = Math.floor(cfg.inFlight / streams) + (s < cfg.inFlight % streams ? 1 : 0);
      leanStream(state, session, ns, share);
    }
  };
}

/**
 * One AllocateStream call with `inFlight` requests kept outstanding on it. Requests go out in
 * one write per batch: the initial ones together, then, per 'data' chunk, one follow-up for
 * every response the chunk completed.
 */
function leanStream(state, session, ns, inFlight) {
  const { cfg } = state;
  const frameMax = allocateRequestFrameMax(ns.length);
  /** correlation id → send time (ms) */
  const sent = new Map();
  let nextId = 1;
  let owed = 0;
  let grpcStatus = null;
  let grpcMessage = '';
  let streamError = null;
  const res = newAllocateResponse();
  const req = session.request(allocateStreamHeaders);

  const send = (k) => {
    const buf = Buffer.allocUnsafe(k * frameMax);
    let at = 0;
    const now = performance.now();
    for (let i = 0; i < k; i++) {
      const id = nextId++;
      sent.set(id, now);
      at = writeAllocateRequestFrame(buf, at, ns, cfg.count, id);
    }
    state.outstanding += k;
    req.write(buf.subarray(0, at));
  };

  const onMessage = (buf, start, end) => {
    if (!decodeAllocateResponse(buf, start, end, res))
      return die(new Error('bytes that are not an AllocateResponse'));
    const startMs = sent.get(res.correlationId);
    if (startMs === undefined) return die(new Error(`unknown correlation id ${res.correlationId}`));
    sent.delete(res.correlationId);
    const err = res.error === null ? null : codeName(res.error.code);
    if (err === null && res.count !== cfg.count)
      return die(new Error(`short allocation ${res.count}`));
    if (completed(state, startMs, err, res.count)) owed++;
    else if (sent.size === 0) req.end();
  };
  const splitter = new FrameReader(4 * 1024 * 1024, {
    message: onMessage,
    oversized: (length) => die(new Error(`gRPC message of ${length} bytes`)),
    compressed: () => die(new Error('gRPC message with the compressed flag set')),
  });

  const onStatus = (headers) => {
    if (headers['grpc-status'] === undefined) return;
    grpcStatus = Number(headers['grpc-status']);
    grpcMessage = percentDecode(String(headers['grpc-message'] ?? '')); // only logged
  };
  req.on('response', (headers) => {
    const httpStatus = headers[':status'];
    if (httpStatus !== 200 && headers['grpc-status'] === undefined) {
      grpcStatus = httpToGrpcStatus(httpStatus);
      grpcMessage = `HTTP ${httpStatus}`;
    } else onStatus(headers); // a trailers-only response carries its status here
  });
  req.on('trailers', onStatus);
  req.on('data', (chunk) => {
    owed = 0;
    try {
      splitter.push(chunk);
    } catch (err) {
      die(err);
    }
    if (owed > 0) send(owed);
  });
  req.on('error', (err) => {
    streamError = err;
  });
  // The call is over once the server's side ends (after its trailers) or the stream closes
  // (reset, lost connection): whatever is still out on it failed with the stream's status.
  const finish = () => {
    if (sent.size === 0) return;
    const code = streamFailure(grpcStatus, req.rstCode, session.destroyed);
    const why =
      grpcMessage ||
      streamError?.message ||
      (session.destroyed ? 'connection lost' : `rst code ${req.rstCode}`);
    process.stderr.write(
      `[bench-client] stream ended with ${sent.size} requests out: ${code} ${why}\n`,
    );
    for (const startMs of sent.values()) completed(state, startMs, code, 0);
    sent.clear();
  };
  req.on('end', () => {
    finish();
    // Like grpc-js: a call the server has finished is closed on our side too (RST_STREAM
    // NO_ERROR if we had not half-closed), or the server would wait for our END_STREAM.
    req.close(http2.constants.NGHTTP2_NO_ERROR);
  });
  req.on('close', finish);
  send(inFlight);
}

/** The status that fails a stream's outstanding requests, mapped as grpc-js maps it. */
function streamFailure(grpcStatus, rstCode, connectionLost) {
  if (grpcStatus !== null && grpcStatus !== 0) return codeName(grpcStatus);
  if (grpcStatus === 0) return 'INTERNAL'; // OK trailers with requests unanswered
  if (connectionLost) return 'UNAVAILABLE'; // the session's streams are reset as CANCEL
  const c = http2.constants;
  if (rstCode === c.NGHTTP2_REFUSED_STREAM) return 'UNAVAILABLE';
  if (rstCode === c.NGHTTP2_CANCEL) return 'CANCELLED';
  if (rstCode === c.NGHTTP2_ENHANCE_YOUR_CALM) return 'RESOURCE_EXHAUSTED';
  if (rstCode !== undefined && rstCode !== c.NGHTTP2_NO_ERROR) return 'INTERNAL';
  return 'UNAVAILABLE';
}

/** grpc-message is percent-encoded. */
function percentDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** gRPC's mapping of a non-200 HTTP status without grpc-status. */
function httpToGrpcStatus(httpStatus) {
  const s = grpc.status;
  if (httpStatus === 400) return s.INTERNAL;
  if (httpStatus === 401) return s.UNAUTHENTICATED;
  if (httpStatus === 403) return s.PERMISSION_DENIED;
  if (httpStatus === 404) return s.UNIMPLEMENTED;
  if ([429, 502, 503, 504].includes(httpStatus)) return s.UNAVAILABLE;
  return s.UNKNOWN;
}

// ---- the client library, as users call it -------------------------------------------------
/** One TallyClient; `inFlight` loops, each awaiting allocate() before calling it again. */
function connectLibrary(state) {
  const { cfg } = state;
  const { TallyClient } = createRequire(import.meta.url)(
    path.join(repoRoot, 'dist/client/index.js'),
  );
  const client = new TallyClient({ addresses: [cfg.target] });
  state.close = () => client.close();
  client.allocate(cfg.namespace, 1).then(
    () => process.send({ type: 'ready' }),
    (err) => die(err),
  );
  return () => {
    const issue = () => {
      const startMs = performance.now();
      state.outstanding++;
      client.allocate(cfg.namespace, cfg.count).then(
        (a) => {
          if (a.count !== cfg.count) return die(new Error(`short allocation ${a.count}`));
          if (completed(state, startMs, null, a.count)) issue();
        },
        (err) => {
          if (completed(state, startMs, err.code === undefined ? err.name : codeName(err.code), 0))
            issue();
        },
      );
    };
    for (let i = 0; i < cfg.inFlight; i++) issue();
  };
}

// ---- grpc-js clients (grpcjs-stream, unary), for comparison --------------------------------
function connectGrpcjs(state) {
  const { cfg } = state;
  const proto = grpc.loadPackageDefinition(loadTallyProto());
  const Counter = proto.tally.v1.Counter;
  const client = new Counter(cfg.target, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
  });
  state.client = client;
  state.close = () => client.close();
  client.waitForReady(Date.now() + 10_000, (err) => {
    if (err) die(err);
    else process.send({ type: 'ready' });
  });
  return () => {
    const issue = cfg.mode === 'grpcjs-stream' ? grpcjsStreamIssuers(state) : unaryIssuer(state);
    for (let i = 0; i < cfg.inFlight; i++) issue[i % issue.length]();
  };
}

/** One issuer per stream: a function that sends one more request on that stream. */
function grpcjsStreamIssuers(state) {
  const { cfg } = state;
  const issuers = [];
  for (let s = 0; s < Math.max(1, cfg.streams); s++) {
    const call = state.client.AllocateStream();
    const sent = new Map();
    let nextId = 1;
    const issue = () => {
      const id = nextId++;
      sent.set(id, performance.now());
      state.outstanding++;
      call.write({ namespace: cfg.namespace, count: cfg.count, correlation_id: id });
    };
    call.on('data', (res) => {
      const startMs = sent.get(res.correlation_id);
      if (startMs === undefined)
        return die(new Error(`unknown correlation id ${res.correlation_id}`));
      sent.delete(res.correlation_id);
      const err = res.error ? codeName(res.error.code) : null;
      if (err === null && res.count !== cfg.count)
        return die(new Error(`short allocation ${res.count}`));
      if (completed(state, startMs, err, res.count)) issue();
      else if (sent.size === 0) call.end();
    });
    call.on('error', (err) => {
      // The stream died: every request on it failed with the stream's status.
      for (const startMs of sent.values()) completed(state, startMs, codeName(err.code), 0);
      sent.clear();
    });
    call.on('end', () => {});
    issuers.push(issue);
  }
  return issuers;
}

function unaryIssuer(state) {
  const { cfg, client } = state;
  const issue = () => {
    const startMs = performance.now();
    state.outstanding++;
    client.Allocate({ namespace: cfg.namespace, count: cfg.count }, (err, res) => {
      const code = err ? codeName(err.code) : null;
      if (code === null && res.count !== cfg.count)
        return die(new Error(`short allocation ${res.count}`));
      if (completed(state, startMs, code, res?.count ?? 0)) issue();
    });
  };
  return [issue];
}

function codeName(code) {
  return grpc.status[code] ?? String(code);
}

/** Writes `records` allocations through the real engine, in-process, as fast as it goes. */
async function fill(cfg) {
  const require = createRequire(import.meta.url);
  const { openNode } = require(path.join(cfg.distDir, 'node/node.js'));
  const { createMetrics } = require(path.join(cfg.distDir, 'core/metrics.js'));
  const pino = require('pino');
  const node = await openNode({
    id: cfg.id,
    dataDir: cfg.dataDir,
    logger: pino({ level: 'warn' }, pino.destination(2)),
    metrics: createMetrics({ defaults: false }),
    checkpointRecords: 1e12,
    checkpointBytes: 1e15,
  });
  const startMs = performance.now();
  const lastIds = {};
  let issued = 0;
  let done = 0;
  await new Promise((resolve, reject) => {
    const issue = () => {
      const ns = `ns${issued % cfg.namespaces}`;
      issued++;
      node.allocate(ns, 1, undefined, (err, res) => {
        if (err) return reject(err);
        lastIds[ns] = Math.max(lastIds[ns] ?? 0, res.first + res.count - 1);
        done++;
        if (done === cfg.records) resolve();
        else if (issued < cfg.records) issue();
      });
    };
    for (let i = 0; i < Math.min(cfg.inFlight, cfg.records); i++) issue();
  });
  process.send({ type: 'filled', records: done, ms: performance.now() - startMs, lastIds });
}

function openEngine(cfg) {
  const require = createRequire(import.meta.url);
  const { createMetrics } = require(path.join(cfg.distDir, 'core/metrics.js'));
  const pino = require('pino');
  const opts = {
    id: 'bench',
    dataDir: cfg.dataDir,
    logger: pino({ level: 'warn' }, pino.destination(2)),
    metrics: createMetrics({ defaults: false }),
  };
  if (cfg.engine === 'baseline') {
    return require(path.join(cfg.distDir, 'node/baseline.js')).openBaselineNode(opts);
  }
  return require(path.join(cfg.distDir, 'node/node.js')).openNode(opts);
}

/** The engine alone, called in-process with `inFlight` allocations outstanding. */
async function inProcess(cfg) {
  const node = await openEngine(cfg);
  let ok = 0;
  let outstanding = 0;
  const startMs = performance.now();
  await new Promise((resolve, reject) => {
    const issue = () => {
      outstanding++;
      node.allocate('bench', 1, undefined, (err) => {
        outstanding--;
        if (err) return reject(err);
        ok++;
        if (performance.now() - startMs < cfg.durationMs) issue();
        else if (outstanding === 0) resolve();
      });
    };
    for (let i = 0; i < cfg.inFlight; i++) issue();
  });
  const perS = ok / ((performance.now() - startMs) / 1000);
  await node.close();
  process.send({ type: 'rate', perS });
}

/** What the disk allows one-at-a-time: the ceiling of any checkpoint-per-write design. */
function device(cfg) {
  const fd = fs.openSync(cfg.file, 'w+');
  fs.writeSync(fd, Buffer.alloc(1 << 20), 0, 1 << 20, 0);
  fs.fsyncSync(fd);
  const buf = Buffer.alloc(128, 1);
  let ok = 0;
  const startMs = performance.now();
  const step = () => {
    fs.write(fd, buf, 0, buf.length, 4096, (err) => {
      if (err) return die(err);
      fs.fdatasync(fd, (syncErr) => {
        if (syncErr) return die(syncErr);
        ok++;
        if (performance.now() - startMs < cfg.durationMs) return step();
        fs.closeSync(fd);
        process.send({ type: 'rate', perS: ok / ((performance.now() - startMs) / 1000) });
      });
    });
  };
  step();
}
