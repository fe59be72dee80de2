// Helpers shared by scripts/bench.mjs and scripts/bench-client.mjs: the latency histogram,
// percentiles, the raw gRPC frame for h2load, the Counter codec (re-exported from the build),
// the h2load report parser and the proto loader. `node scripts/bench.mjs --self-test` checks
// the histogram and parsers.
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const protoDir = path.join(repoRoot, 'proto');

/** Loads tally.v1 (counter + admin) the same way every grpc-js client does. */
export function loadTallyProto() {
  return protoLoader.loadSync(
    [path.join(protoDir, 'tally/v1/counter.proto'), path.join(protoDir, 'tally/v1/admin.proto')],
    { keepCase: true, longs: Number, enums: String, defaults: true, includeDirs: [protoDir] },
  );
}

// ---- latency histogram -------------------------------------------------------------------
// Log-scale buckets of 1% width over microseconds: bucket b holds latencies in
// [e^(b/100), e^((b+1)/100)) µs. Mergeable across workers, bounded in size (about 1800
// buckets up to one minute), and 1% is far finer than run-to-run noise.
const bucketsPerE = 100;

export function newHistogram() {
  return { counts: new Map(), n: 0, sumUs: 0, maxUs: 0 };
}

export function recordUs(h, us) {
  const b = us <= 1 ? 0 : Math.floor(Math.log(us) * bucketsPerE);
  h.counts.set(b, (h.counts.get(b) ?? 0) + 1);
  h.n++;
  h.sumUs += us;
  if (us > h.maxUs) h.maxUs = us;
}

/** A plain object for process.send (Maps do not survive JSON IPC). */
export function histogramToJson(h) {
  return { counts: [...h.counts.entries()], n: h.n, sumUs: h.sumUs, maxUs: h.maxUs };
}

export function mergeHistograms(list) {
  const out = newHistogram();
  for (const h of list) {
    for (const [b, c] of h.counts) out.counts.set(b, (out.counts.get(b) ?? 0) + c);
    out.n += h.n;
    out.sumUs += h.sumUs;
    out.maxUs = Math.max(out.maxUs, h.maxUs);
  }
  return out;
}

/** Accepts a histogram or its JSON form. */
export function fromJson(j) {
  return { counts: new Map(j.counts), n: j.n, sumUs: j.sumUs, maxUs: j.maxUs };
}

/**
 * The q-quantile (0 < q <= 1) in microseconds: the smallest bucket whose cumulative count
 * reaches ceil(q * n) ("nearest rank"), reported at the bucket's geometric midpoint.
 */
export function percentileUs(h, q) {
  if (h.n === 0) return NaN;
  const rank = Math.max(1, Math.ceil(q * h.n));
  const buckets = [...h.counts.keys()].sort((a, b) => a - b);
  let seen = 0;
  for (const b of buckets) {
    seen += h.counts.get(b);
    if (seen >= rank) return b === 0 ? 1 : Math.min(Math.exp((b + 0.5) / bucketsPerE), h.maxUs);
  }
  return h.maxUs;
}

/** Exact nearest-rank percentile of raw samples (used for h2load's per-request log). */
export function percentileOfSorted(sorted, q) {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1];
}

// ---- raw gRPC frames: the one Counter codec (src/core/grpc-wire.ts, built) ---------------
// The server, the client library and this benchmark share it; it is unit-tested against
// protobufjs in src/core/grpc-wire.test.ts. `npm run bench` builds first.
const wire = createRequire(import.meta.url)(path.join(repoRoot, 'dist/core/grpc-wire.js'));
export const {
  allocateRequestFrameMax,
  writeAllocateRequestFrame,
  decodeAllocateResponse,
  FrameReader,
} = wire;

/** A reusable decode target for decodeAllocateResponse. */
export function newAllocateResponse() {
  return { first: 0, count: 0, correlationId: 0, epoch: 0, index: 0, error: null };
}

/** One framed AllocateRequest{namespace, count} (h2load's request body). */
export function allocateRequestFrame(namespace, count) {
  const ns = Buffer.from(namespace, 'utf8');
  const buf = Buffer.alloc(allocateRequestFrameMax(ns.length));
  return buf.subarray(0, writeAllocateRequestFrame(buf, 0, ns, count, 0));
}

// ---- h2load output -----------------------------------------------------------------------
/** Extracts the figures we use from h2load's text report; throws if it is not one. */
export function parseH2loadReport(text) {
  const finished = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(text);
  const requests =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      text,
    );
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  if (finished === null || requests === null || codes === null) {
    throw new Error(`bench: cannot parse h2load output:\n${text}`);
  }
  const seconds = Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1);
  return {
    durationS: seconds,
    reqPerS: Number(finished[3]),
    total: Number(requests[1]),
    done: Number(requests[3]),
    succeeded: Number(requests[4]),
    failed: Number(requests[5]),
    errored: Number(requests[6]),
    timeout: Number(requests[7]),
    status2xx: Number(codes[1]),
  };
}

/** Elapsed microseconds of every 2xx request in an h2load --log-file, sorted. */
export function parseH2loadLog(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [, status, elapsed] = line.split('\t');
    if (status === '200') out.push(Number(elapsed));
  }
  return out.sort((a, b) => a - b);
}

// ---- Prometheus text ---------------------------------------------------------------------
/** Sum of every sample of `name` whose labels include all of `labels`. */
export function metricSum(text, name, labels = {}) {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m === null || m[1] !== name) continue;
    const labelText = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) {
      sum += Number(m[3]);
      found = true;
    }
  }
  return found ? sum : undefined;
}

/** Every `code` label value of `name` with its summed count. */
export function metricByCode(text, name, labels = {}) {
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (m === null || m[1] !== name) continue;
    if (!Object.entries(labels).every(([k, v]) => m[2].includes(`${k}="${v}"`))) continue;
    const code = /code="([^"]*)"/.exec(m[2]);
    if (code !== null) out[code[1]] = (out[code[1]] ?? 0) + Number(m[3]);
  }
  return out;
}
