/**
 * The gRPC wire format of tally.v1.Counter, by hand: length-prefixed message frames, and the
 * protobuf encoding of AllocateRequest / AllocateResponse (proto/tally/v1/counter.proto).
 * The Counter service is the hot path: the server serves it on Node's http2 directly
 * (src/server/counter-service.ts) and the client library speaks it the same way
 * (src/client/http2-transport.ts); the benchmark's load generator uses these too. One codec for
 * both ends, pure and unit-tested against protobufjs.
 *
 * Decoding follows protobuf rules: fields in any order, the last occurrence wins, unknown
 * fields of every wire type are skipped. A known field with the wrong wire type, a varint
 * longer than 10 bytes or a length past the end makes the message invalid.
 */

/** The 5-byte prefix of every gRPC message: compressed flag, then the length (uint32 BE). */
export const frameHeaderBytes = 5;

/**
 * A decoded AllocateRequest. correlationId is a copy of the raw varint bytes, echoed back
 * unchanged (a uint64: no precision is lost, whatever its value).
 */
export interface AllocateRequestView {
  namespace: string;
  count: number;
  correlationId: Buffer | null;
}

/** Field numbers and wire types of tally.v1.AllocateRequest / AllocateResponse / StreamError. */
const wire = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;
const tag = (field: number, type: number): number => (field << 3) | type;

/** Where a varint at buf[at] ends (exclusive), or -1 if it is longer than 10 bytes or cut off. */
function varintEnd(buf: Buffer, at: number, end: number): number {
  for (let i = 0; i < 10 && at + i < end; i++) {
    if (((buf[at + i] as number) & 0x80) === 0) return at + i + 1;
  }
  return -1;
}

/** The low 32 bits of the varint in buf[at, stop) (protobuf's uint32 reading). */
function varintLow32(buf: Buffer, at: number, stop: number): number {
  let value = 0;
  for (let i = 0; i < 5 && at + i < stop; i++) {
    value |= ((buf[at + i] as number) & 0x7f) << (7 * i);
  }
  return value >>> 0;
}

/** The value of a varint known to be below 2^53 (lengths, tags). */
function varintSmall(buf: Buffer, at: number, stop: number): number {
  let value = 0;
  let scale = 1;
  for (let i = at; i < stop; i++) {
    value += ((buf[i] as number) & 0x7f) * scale;
    scale *= 128;
  }
  return value;
}

/**
 * Decodes buf[start, end) as an AllocateRequest; null when the bytes are not a valid one.
 * Missing fields take proto3 defaults ('' and 0), which the node then refuses.
 */
export function decodeAllocateRequest(
  buf: Buffer,
  start: number,
  end: number,
): AllocateRequestView | null {
  let namespace = '';
  let count = 0;
  let correlationId: Buffer | null = null;
  let at = start;
  while (at < end) {
    const tagEnd = varintEnd(buf, at, end);
    if (tagEnd < 0) return null;
    const key = varintSmall(buf, at, tagEnd);
    at = tagEnd;
    const type = key % 8;
    const field = Math.floor(key / 8);
    if (field === 0) return null;
    if (type === wire.varint) {
      const valueEnd = varintEnd(buf, at, end);
      if (valueEnd < 0) return null;
      if (field === 2) count = varintLow32(buf, at, valueEnd);
      else if (field === 3) {
        // A uint64 has at most 64 bits: a 10th byte above 1 does not fit, and strict
        // decoders would refuse the response that echoes it.
        if (valueEnd - at === 10 && (buf[at + 9] as number) > 1) return null;
        correlationId = Buffer.from(buf.subarray(at, valueEnd));
      } else if (field === 1) return null;
      at = valueEnd;
    } else if (type === wire.bytes) {
      const lenEnd = varintEnd(buf, at, end);
      if (lenEnd < 0) return null;
      const len = varintSmall(buf, at, lenEnd);
      if (len > end - lenEnd) return null;
      if (field === 1) namespace = buf.toString('utf8', lenEnd, lenEnd + len);
      else if (field === 2 || field === 3) return null;
      at = lenEnd + len;
    } else if (type === wire.fixed64 || type === wire.fixed32) {
      if (field <= 3) return null;
      at += type === wire.fixed64 ? 8 : 4;
      if (at > end) return null;
    } else {
      return null; // groups (3, 4) and the undefined wire types 6, 7
    }
  }
  return { namespace, count, correlationId };
}

/** Bytes of `value` as a varint (value < 2^53). */
function varintBytes(value: number): number {
  let n = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

function writeVarint(buf: Buffer, at: number, value: number): number {
  while (value >= 128) {
    buf[at++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  buf[at++] = value;
  return at;
}

/** One AllocateResponse to encode: a success (first..) or an error (code, message). */
export interface ResponseFields {
  first: number;
  count: number;
  epoch: number;
  index: number;
  correlationId: Buffer | null;
  error: { code: number; message: string; primaryAddress: string } | null;
}

/** Bytes of a non-empty string field with a one-byte tag (0 when empty: not written). */
function stringFieldBytes(value: string): number {
  if (value.length === 0) return 0;
  const len = Buffer.byteLength(value);
  return 1 + varintBytes(len) + len;
}

function errorBodyBytes(e: NonNullable<ResponseFields['error']>): number {
  // int32 code is sign-extended to 10 bytes when negative (protobuf rules); ours never are.
  return (
    (e.code === 0 ? 0 : 1 + varintBytes(e.code)) +
    stringFieldBytes(e.message) +
    stringFieldBytes(e.primaryAddress)
  );
}

/** Upper bound of the framed size of one response (exact for errors, ≤ for successes). */
export function responseFrameBytes(r: ResponseFields): number {
  const correlation = r.correlationId === null ? 0 : 1 + r.correlationId.length;
  if (r.error !== null) {
    const body = errorBodyBytes(r.error);
    return frameHeaderBytes + correlation + 1 + varintBytes(body) + body;
  }
  // first, epoch, index < 2^53 → ≤ 8 varint bytes each; count is a uint32 → ≤ 5.
  return frameHeaderBytes + correlation + 3 * (1 + 8) + (1 + 5);
}

function writeString(buf: Buffer, at: number, field: number, value: string): number {
  if (value.length === 0) return at;
  buf[at++] = tag(field, wire.bytes);
  at = writeVarint(buf, at, Buffer.byteLength(value));
  return at + buf.write(value, at, 'utf8');
}

/** Writes one framed AllocateResponse at buf[at]; returns the end. */
export function writeResponseFrame(buf: Buffer, at: number, r: ResponseFields): number {
  const start = at;
  at += frameHeaderBytes;
  const uint = (field: number, value: number): void => {
    if (value === 0) return;
    buf[at++] = tag(field, wire.varint);
    at = writeVarint(buf, at, value);
  };
  if (r.error === null) {
    uint(1, r.first);
    uint(2, r.count);
  }
  if (r.correlationId !== null) {
    buf[at++] = tag(3, wire.varint);
    at += r.correlationId.copy(buf, at);
  }
  if (r.error === null) {
    uint(4, r.epoch);
    uint(5, r.index);
  } else {
    buf[at++] = tag(6, wire.bytes);
    at = writeVarint(buf, at, errorBodyBytes(r.error));
    uint(1, r.error.code);
    at = writeString(buf, at, 2, r.error.message);
    at = writeString(buf, at, 3, r.error.primaryAddress);
  }
  buf[start] = 0;
  buf.writeUInt32BE(at - start - frameHeaderBytes, start + 1);
  return at;
}

/** Frames `responses` into one buffer: one write per batch of responses. */
export function encodeResponseFrames(responses: readonly ResponseFields[]): Buffer {
  let bound = 0;
  for (const r of responses) bound += responseFrameBytes(r);
  const buf = Buffer.allocUnsafe(bound);
  let at = 0;
  for (const r of responses) at = writeResponseFrame(buf, at, r);
  return buf.subarray(0, at);
}

/** What a FrameReader hands over for each gRPC message it completes or skips. */
export interface FrameSink {
  /** A whole message; `buf[start, end)` is only valid during the call. */
  message(buf: Buffer, start: number, end: number): void;
  /** A message above the size limit: its bytes were skipped, never buffered. */
  oversized(length: number): void;
  /** A message with the compressed flag set (the server offers no compression). */
  compressed(): void;
}

/**
 * Splits an http2 DATA stream into gRPC messages across chunk boundaries. Messages above
 * `maxMessageBytes` are skipped without buffering them. Per chunk, complete messages are
 * handed over in place; only a message cut by a chunk boundary is copied.
 */
export class FrameReader {
  private header = Buffer.alloc(frameHeaderBytes);
  private headerHave = 0;
  /** The message being assembled across chunks (or being skipped if oversized). */
  private partial: Buffer | null = null;
  private partialHave = 0;
  private skipRemaining = 0;

  constructor(
    private readonly maxMessageBytes: number,
    private readonly sink: FrameSink,
  ) {}

  /** True between messages: no header or body bytes are pending. */
  get atBoundary(): boolean {
    return this.headerHave === 0 && this.partial === null && this.skipRemaining === 0;
  }

  push(chunk: Buffer): void {
    let at = 0;
    const end = chunk.length;
    while (at < end) {
      if (this.skipRemaining > 0) {
        const n = Math.min(this.skipRemaining, end - at);
        this.skipRemaining -= n;
        at += n;
        continue;
      }
      if (this.partial !== null) {
        const n = Math.min(this.partial.length - this.partialHave, end - at);
        chunk.copy(this.partial, this.partialHave, at, at + n);
        this.partialHave += n;
        at += n;
        if (this.partialHave === this.partial.length) {
          const message = this.partial;
          this.partial = null;
          this.sink.message(message, 0, message.length);
        }
        continue;
      }
      // A header: in place when the chunk holds all of it, else assembled.
      let flag: number;
      let length: number;
      if (this.headerHave === 0 && end - at >= frameHeaderBytes) {
        flag = chunk[at] as number;
        length = chunk.readUInt32BE(at + 1);
        at += frameHeaderBytes;
      } else {
        const n = Math.min(frameHeaderBytes - this.headerHave, end - at);
        chunk.copy(this.header, this.headerHave, at, at + n);
        this.headerHave += n;
        at += n;
        if (this.headerHave < frameHeaderBytes) return;
        this.headerHave = 0;
        flag = this.header[0] as number;
        length = this.header.readUInt32BE(1);
      }
      if (flag !== 0) {
        this.skipRemaining = length;
        this.sink.compressed();
        continue;
      }
      if (length > this.maxMessageBytes) {
        this.skipRemaining = length;
        this.sink.oversized(length);
        continue;
      }
      if (end - at >= length) {
        this.sink.message(chunk, at, at + length);
        at += length;
      } else {
        this.partial = Buffer.allocUnsafe(length);
        this.partialHave = 0;
      }
    }
  }
}

// ---- the client's side: AllocateRequest out, AllocateResponse in ---------------------------

/** Upper bound of a framed AllocateRequest's bytes for a namespace of `nsBytes` UTF-8 bytes. */
export function allocateRequestFrameMax(nsBytes: number): number {
  // prefix, tag + length varint + namespace, tag + uint32 varint, tag + uint64 varint
  return frameHeaderBytes + 1 + 5 + nsBytes + 1 + 5 + 1 + 10;
}

/**
 * Writes one framed AllocateRequest{namespace (1), count (2), correlation_id (3)} at buf[at];
 * returns the end. `ns` is the namespace's UTF-8 bytes; zero fields are left out, as proto3
 * encoders do. count < 2^32 and correlationId < 2^53 (JS numbers, exact). buf needs
 * allocateRequestFrameMax(ns.length) bytes from `at`.
 */
export function writeAllocateRequestFrame(
  buf: Buffer,
  at: number,
  ns: Buffer,
  count: number,
  correlationId: number,
): number {
  let p = at + frameHeaderBytes;
  if (ns.length > 0) {
    buf[p++] = tag(1, wire.bytes);
    p = writeVarint(buf, p, ns.length);
    p += ns.copy(buf, p);
  }
  if (count !== 0) {
    buf[p++] = tag(2, wire.varint);
    p = writeVarint(buf, p, count);
  }
  if (correlationId !== 0) {
    buf[p++] = tag(3, wire.varint);
    p = writeVarint(buf, p, correlationId);
  }
  buf[at] = 0;
  buf.writeUInt32BE(p - at - frameHeaderBytes, at + 1);
  return p;
}

/** A decoded AllocateResponse; uint64 fields as numbers (exact below 2^53). */
export interface AllocateResponseView {
  first: number;
  count: number;
  correlationId: number;
  epoch: number;
  index: number;
  /** tally.v1.StreamError, or null when the response is a success. */
  error: { code: number; message: string; primaryAddress: string } | null;
}

/** One field as fieldAt() found it: its number and where its value's bytes are. */
interface FieldSpan {
  field: number;
  /** For length-delimited fields, the contents (after the length); else the value itself. */
  valueStart: number;
  /** Where the field ends (the next one starts). */
  end: number;
}

/** The reusable span of the response decoders (decoding is synchronous and never reentered). */
const span: FieldSpan = { field: 0, valueStart: 0, end: 0 };

/**
 * Reads the field at buf[at] into `span`; false if it is malformed or cut off, or when a field
 * numbered 1..types.length arrives with another wire type than types[field - 1].
 */
function fieldAt(buf: Buffer, at: number, end: number, types: readonly number[]): boolean {
  const tagEnd = varintEnd(buf, at, end);
  if (tagEnd < 0) return false;
  const key = varintSmall(buf, at, tagEnd);
  const type = key % 8;
  const field = Math.floor(key / 8);
  if (field === 0 || (field <= types.length && type !== types[field - 1])) return false;
  const valueEnd = skipValue(buf, tagEnd, end, type);
  if (valueEnd < 0) return false;
  span.field = field;
  span.valueStart = type === wire.bytes ? varintEnd(buf, tagEnd, end) : tagEnd;
  span.end = valueEnd;
  return true;
}

/** Where the value of wire type `type` at buf[at] ends, or -1 when malformed or cut off. */
function skipValue(buf: Buffer, at: number, end: number, type: number): number {
  if (type === wire.varint) return varintEnd(buf, at, end);
  if (type === wire.bytes) {
    const lenEnd = varintEnd(buf, at, end);
    if (lenEnd < 0) return -1;
    const len = varintSmall(buf, at, lenEnd);
    return len > end - lenEnd ? -1 : lenEnd + len;
  }
  if (type === wire.fixed64 || type === wire.fixed32) {
    const stop = at + (type === wire.fixed64 ? 8 : 4);
    return stop > end ? -1 : stop;
  }
  return -1; // groups (3, 4) and the undefined wire types 6, 7
}

const streamErrorTypes = [wire.varint, wire.bytes, wire.bytes];
const responseTypes = [wire.varint, wire.varint, wire.varint, wire.varint, wire.varint, wire.bytes];

/** Decodes StreamError{code (1), message (2), primary_address (3)}; null if malformed. */
function decodeStreamError(buf: Buffer, start: number, end: number): AllocateResponseView['error'] {
  const out = { code: 0, message: '', primaryAddress: '' };
  for (let at = start; at < end; at = span.end) {
    if (!fieldAt(buf, at, end, streamErrorTypes)) return null;
    const { field, valueStart } = span;
    // int32: the low 32 bits, signed (negative values take 10 bytes).
    if (field === 1) out.code = varintLow32(buf, valueStart, span.end) | 0;
    else if (field === 2) out.message = buf.toString('utf8', valueStart, span.end);
    else if (field === 3) out.primaryAddress = buf.toString('utf8', valueStart, span.end);
  }
  return out;
}

/**
 * Decodes buf[start, end) as an AllocateResponse into `out` (reused: nothing is allocated
 * unless the response carries an error). Returns false when the bytes are not a valid one:
 * a known field with the wrong wire type, a varint longer than 10 bytes, a length past the end.
 * Fields may come in any order (the last wins); unknown fields are skipped.
 */
export function decodeAllocateResponse(
  buf: Buffer,
  start: number,
  end: number,
  out: AllocateResponseView,
): boolean {
  out.first = 0;
  out.count = 0;
  out.correlationId = 0;
  out.epoch = 0;
  out.index = 0;
  out.error = null;
  for (let at = start; at < end; at = span.end) {
    if (!fieldAt(buf, at, end, responseTypes)) return false;
    const { field, valueStart } = span;
    if (field === 2) out.count = varintLow32(buf, valueStart, span.end);
    else if (field === 6) {
      const fieldEnd = span.end;
      const error = decodeStreamError(buf, valueStart, fieldEnd);
      if (error === null) return false;
      out.error = error;
      span.end = fieldEnd;
    } else if (field <= 5) {
      const value = varintSmall(buf, valueStart, span.end);
      if (field === 1) out.first = value;
      else if (field === 3) out.correlationId = value;
      else if (field === 4) out.epoch = value;
      else out.index = value;
    }
  }
  return true;
}

/** Parses a grpc-timeout header value ("100m", "5S", ...) into milliseconds; null if invalid. */
export function parseGrpcTimeoutMs(value: string): number | null {
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (match === null) return null;
  const amount = Number(match[1]);
  const unitMs: Record<string, number> = {
    H: 3_600_000,
    M: 60_000,
    S: 1000,
    m: 1,
    u: 0.001,
    n: 0.000001,
  };
  return amount * (unitMs[match[2] as string] as number);
}
