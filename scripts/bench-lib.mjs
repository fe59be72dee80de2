// Helpers shared by scripts/bench.mjs and scripts/bench-client.mjs: the latency histogram,
// percentiles, the raw gRPC frame for h2load, the lean stream client's codec (request frames,
// response frame splitting, AllocateResponse decoding), the h2load report parser and the proto
// loader. `node scripts/bench.mjs --self-test` checks them.
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

// ---- raw gRPC frames: h2load's request body and the lean stream client's codec -----------
// Protobuf by hand (proto/tally/v1/counter.proto). Integers are JS numbers: exact up to 2^53,
// which covers every ID (at most 2^53-1) and every correlation id the client sends.

/** Writes `n` (an integer in [0, 2^53)) as a varint at buf[at]; returns the end. */
function writeVarint(buf, at, n) {
  while (n > 0x7f) {
    buf[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

/** Upper bound of a framed AllocateRequest's bytes for a namespace of `nsBytes` UTF-8 bytes. */
export function allocateRequestFrameMax(nsBytes) {
  // prefix, tag + length varint + namespace, tag + uint32 varint, tag + uint64 varint
  return 5 + 1 + 5 + nsBytes + 1 + 5 + 1 + 10;
}

/**
 * Writes one gRPC frame (flag 0, u32 BE length) holding AllocateRequest{namespace (field 1),
 * count (2), correlation_id (3)} at buf[at]; returns the end. `ns` is the namespace's UTF-8
 * bytes; zero fields are left out, as proto3 encoders do. `buf` needs
 * allocateRequestFrameMax(ns.length) bytes from `at`.
 */
export function writeAllocateRequestFrame(buf, at, ns, count, correlationId) {
  let p = at + 5;
  if (ns.length > 0) {
    buf[p++] = 0x0a;
    p = writeVarint(buf, p, ns.length);
    p += ns.copy(buf, p);
  }
  if (count !== 0) {
    buf[p++] = 0x10;
    p = writeVarint(buf, p, count);
  }
  if (correlationId !== 0) {
    buf[p++] = 0x18;
    p = writeVarint(buf, p, correlationId);
  }
  buf[at] = 0;
  buf.writeUInt32BE(p - at - 5, at + 1);
  return p;
}

/** Protobuf bytes of AllocateRequest{namespace, count[, correlation_id]}, unframed. */
export function encodeAllocateRequest(namespace, count, correlationId = 0) {
  const ns = Buffer.from(namespace, 'utf8');
  const buf = Buffer.alloc(allocateRequestFrameMax(ns.length));
  return buf.subarray(5, writeAllocateRequestFrame(buf, 0, ns, count, correlationId));
}

/** A length-prefixed gRPC message: compressed flag 0, u32 big-endian length, message. */
export function grpcFrame(message) {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}

/** A cursor over protobuf bytes buf[pos, end). */
function reader(buf, pos, end) {
  return { buf, pos, end };
}

/** The cursor decodeAllocateResponse reuses (decoding is synchronous, never reentered). */
const responseReader = reader(null, 0, 0);

/** Throws for a known field that arrived with the wrong wire type. */
function wrongType(message, tag) {
  return new Error(`protobuf: ${message} field ${Math.floor(tag / 8)} with wire type ${tag % 8}`);
}

/** Reads a varint as a number (exact below 2^53; uint64 values above that lose precision). */
function readVarint(r) {
  const { buf, end } = r;
  let at = r.pos;
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (at >= end) throw new Error('protobuf: varint cut off');
    const b = buf[at++];
    value += (b & 0x7f) * scale;
    if (b < 0x80) {
      r.pos = at;
      return value;
    }
    scale *= 128;
  }
  throw new Error('protobuf: varint longer than 10 bytes');
}

/** Reads a varint as protobuf's int32: its low 32 bits, signed (negatives take 10 bytes). */
function readInt32(r) {
  const start = r.pos;
  readVarint(r);
  let value = 0;
  for (let i = 0; i < 5 && start + i < r.pos; i++) value |= (r.buf[start + i] & 0x7f) << (7 * i);
  return value | 0;
}

/** Reads a length-delimited field's length and checks it fits; returns its start. */
function readBytes(r) {
  const length = readVarint(r);
  const start = r.pos;
  if (length > r.end - start) throw new Error('protobuf: length past the end');
  r.pos = start + length;
  return start;
}

/** Skips the value of an unknown field of wire type `type`. */
function skipField(r, type) {
  if (type === 0) readVarint(r);
  else if (type === 2) readBytes(r);
  else if (type === 1 || type === 5) {
    r.pos += type === 1 ? 8 : 4;
    if (r.pos > r.end) throw new Error('protobuf: fixed field cut off');
  } else throw new Error(`protobuf: wire type ${type}`);
}

/** Reads a field key; returns field number * 8 + wire type (the tag). */
function readTag(r) {
  const tag = readVarint(r);
  if (tag < 8) throw new Error('protobuf: field number 0');
  return tag;
}

/** A reusable decode target for decodeAllocateResponse. */
export function newAllocateResponse() {
  return { first: 0, count: 0, correlationId: 0, error: null };
}

/**
 * Decodes buf[start, end) as tally.v1.AllocateResponse into `out` (reused, so decoding does
 * not allocate unless the response carries an error): first (field 1), count (2),
 * correlation_id (3), error (6: StreamError{code 1, message 2, primary_address 3}, or null when
 * absent). Fields may come in any order (the last wins), unknown fields of any wire type are
 * skipped (epoch 4 and index 5 too); a known field with the wrong wire type, or bytes that are
 * not protobuf, throw.
 */
export function decodeAllocateResponse(buf, start, end, out = newAllocateResponse()) {
  out.first = 0;
  out.count = 0;
  out.correlationId = 0;
  out.error = null;
  const r = responseReader;
  r.buf = buf;
  r.pos = start;
  r.end = end;
  try {
    while (r.pos < end) {
      const tag = readTag(r);
      if (tag === 0x08) out.first = readVarint(r);
      else if (tag === 0x10) out.count = readVarint(r) % 2 ** 32;
      else if (tag === 0x18) out.correlationId = readVarint(r);
      else if (tag === 0x32) {
        const at = readBytes(r);
        out.error = decodeStreamError(buf, at, r.pos);
      } else if (tag < 32 || Math.floor(tag / 8) === 6) throw wrongType('AllocateResponse', tag);
      else skipField(r, tag % 8);
    }
  } finally {
    r.buf = null;
  }
  return out;
}

/** tally.v1.StreamError{code int32 (1), message string (2), primary_address string (3)}. */
export function decodeStreamError(buf, start, end) {
  const out = { code: 0, message: '', primaryAddress: '' };
  const r = reader(buf, start, end);
  while (r.pos < end) {
    const tag = readTag(r);
    if (tag === 0x08) out.code = readInt32(r);
    else if (tag === 0x12 || tag === 0x1a) {
      const at = readBytes(r);
      out[tag === 0x12 ? 'message' : 'primaryAddress'] = buf.toString('utf8', at, r.pos);
    } else if (tag < 32) throw wrongType('StreamError', tag);
    else skipField(r, tag % 8);
  }
  return out;
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
