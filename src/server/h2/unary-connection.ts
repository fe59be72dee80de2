/**
 * Counter's unary Allocate served at the HTTP/2 frame level, below Node's http2: one object
 * per connection, no per-stream JS stream, event emitter or header object. Node's http2 costs
 * ~30 µs of the event loop per unary call (a bare Node http2 server that answers at once tops
 * out near 33K calls/s on one connection here); this path costs a few µs.
 *
 * A connection starts out sniffing: the server's SETTINGS (empty: protocol defaults) go out at
 * once, and what the client sends is buffered until its first request's :path is known.
 *   - `/tally.v1.Counter/Allocate`: the connection stays here for good (fast mode); the
 *     buffered bytes are processed from the preface on.
 *   - anything else, bytes that are not HTTP/2, or no request within sniffMs: the connection
 *     is handed to grpc-js (the bytes put back on the socket), minus the client's ACK of our
 *     SETTINGS, which grpc-js never sent (it sends its own). Nothing was answered before.
 * In fast mode, a request for any other path gets GOAWAY (the last stream id before it) and
 * REFUSED_STREAM: gRPC clients retry such a call on a new connection, which goes to grpc-js.
 *
 * Flow control: the client's windows are respected for our DATA (responses wait when a window
 * is closed); ours are replenished as DATA is read. Bounds: a request body above
 * receiveMessageBytesMax is refused without buffering it; header blocks above
 * headerListBytesMax end the connection; at most streamsOpenMax calls are open at once.
 */
import type * as net from 'node:net';
import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  type AllocateRequestView,
  decodeAllocateRequest,
  encodeResponseFrames,
  frameHeaderBytes,
  FrameReader,
  type FrameSink,
  parseGrpcTimeoutMs,
  type ResponseFields,
  responseFrameBytes,
  writeResponseFrame,
} from '../../core/grpc-wire';
import {
  receiveMessageBytesMax,
  streamInFlightMax,
  streamPendingWriteBytesMax,
} from '../../core/limits';
import type { AllocateResult } from '../../node/types';
import { counterErrors, errorFields, grpcMessage, okFields } from '../counter-errors';
import type { GrpcError } from '../status';
import {
  connectionPreface,
  defaultWindow,
  errorCode,
  flag,
  frame,
  frameHeaderLength,
  frameType,
  goawayFrame,
  maxFrameSize,
  rstStreamFrame,
  setting,
  windowMax,
  windowUpdateFrame,
  writeFrameHeader,
} from './frames';
import {
  encodeLiteralField,
  type HeaderFields,
  HpackDecoder,
  HpackError,
  status200,
} from './hpack';

export const allocatePath = '/tally.v1.Counter/Allocate';
export const allocateStreamPath = '/tally.v1.Counter/AllocateStream';

/** Which Counter method a call is, for the metrics. */
export type CounterMethod = 'unary' | 'stream';

/** How long a new connection may take to send its first request before grpc-js takes it. */
export const sniffMs = 100;
/** How long the client may take to ACK our SETTINGS (RFC 9113 asks for "as soon as possible"). */
const settingsAckMs = 5000;
/** How long a closing connection may take to be sent what is queued for it. */
const closeWriteMsMax = 30_000;
/**
 * What a sniffing connection may buffer. Before our WINDOW_UPDATEs a client can send at most
 * 65535 bytes of DATA, so a well-behaved one stays far below; without a bound a client that
 * never ACKs our SETTINGS had the node buffer (and re-copy, per chunk) all it sent for
 * settingsAckMs.
 */
const sniffBytesMax = 1024 * 1024;
const headerListBytesMax = 64 * 1024;
/**
 * CONTINUATION frames one header block may take. Empty or tiny ones add nothing to the block's
 * size, so without a count a client could send them for ever, each one kept (the 2024
 * "CONTINUATION flood"; nghttp2 allows 8). 64 KiB of header list fits in 4 full frames.
 */
const continuationFramesMax = 64;
const streamsOpenMax = 10_000;

/** What the connection needs from the server. */
export interface UnaryHost {
  /** The connection is not ours: serve it with grpc-js (`socket` has the bytes put back). */
  handoff(socket: net.Socket): void;
  /** Allocates for a well-formed request; done() once, with the result or the status. */
  allocate(
    method: CounterMethod,
    request: AllocateRequestView,
    deadlineUnixMs: number | undefined,
    done: (status: GrpcError | null, result: AllocateResult | undefined) => boolean,
  ): void;
  /** A request refused before it reached the node (metrics). */
  refused(method: CounterMethod, startMs: number, code: number): void;
  /** The connection stays here (its first call is a unary Allocate). */
  fast(): void;
  /** Counter is draining: new calls get UNAVAILABLE. */
  readonly draining: boolean;
  closed(conn: UnaryConnection): void;
}

const responseHeadersBlock = Buffer.concat([
  status200,
  encodeLiteralField('content-type', 'application/grpc+proto'),
  encodeLiteralField('grpc-accept-encoding', 'identity'),
]);
const okTrailersBlock = encodeLiteralField('grpc-status', '0');
const okTrailersOnlyBlock = Buffer.concat([responseHeadersBlock, okTrailersBlock]);
const status415Block = encodeLiteralField(':status', '415');

const errors = {
  ...counterErrors,
  tooManyStreams: {
    code: GrpcStatus.RESOURCE_EXHAUSTED,
    details: `server: more than ${streamsOpenMax} calls open on one connection`,
  },
} satisfies Record<string, GrpcError>;

/** The status block of a trailers-only response. */
function errorBlock(err: GrpcError): Buffer {
  return Buffer.concat([responseHeadersBlock, trailersBlock(err)]);
}

/** Trailers: the status (OK when err is null) with its message and metadata. */
function trailersBlock(err: GrpcError | null): Buffer {
  if (err === null) return okTrailersBlock;
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(err.metadata?.toHttp2Headers() ?? {})) {
    for (const value of Array.isArray(v) ? v : [v]) {
      parts.push(encodeLiteralField(k, String(value)));
    }
  }
  parts.push(encodeLiteralField('grpc-status', String(err.code)));
  parts.push(encodeLiteralField('grpc-message', grpcMessage(err.details)));
  return Buffer.concat(parts);
}

type StreamState = 'reading' | 'allocating' | 'done';

class Call {
  state: StreamState = 'reading';
  sendWindow: number;
  /** The request's bytes (gRPC frame included), when they come in more than one DATA frame. */
  body: Buffer | null = null;
  bodyLength = 0;
  /** Received DATA bytes not yet given back with a stream WINDOW_UPDATE. */
  unacked = 0;
  /** The body passed receiveMessageBytesMax: its bytes are dropped. */
  tooLarge = false;
  deadlineUnixMs: number | undefined = undefined;
  readonly startMs = performance.now();
  constructor(
    readonly id: number,
    sendWindow: number,
  ) {
    this.sendWindow = sendWindow;
  }
}

/** A response queued for the socket. */
interface Answer {
  call: Call;
  /** Success: the response message (DATA) and OK trailers. */
  fields: ResponseFields | null;
  /** Trailers-only (an error) or an HTTP-level refusal: one HEADERS frame with END_STREAM. */
  block: Buffer | null;
  /**
   * The response message's bytes not sent yet, once its HEADERS went out with part of it (the
   * windows held less than the whole message: it goes in pieces, as HTTP/2 asks).
   */
  rest?: Buffer;
}

/**
 * One AllocateStream call: requests are read as they come (any number per DATA frame, or one
 * across several), each handed to the node; answers completed in one turn leave in one DATA
 * frame (as the windows allow); trailers once the client has half-closed and every request is
 * answered. Backpressure: the stream's window is not given back while too many requests are
 * in flight or too many answer bytes wait, so the client cannot send more.
 */
class StreamCall implements FrameSink {
  readonly startMs = performance.now();
  sendWindow: number;
  unacked = 0;
  inFlight = 0;
  /** No more requests are read: the client half-closed, or its input was unreadable. */
  halfClosed = false;
  /** Why reading stopped early; the call ends with this status once in-flight work is done. */
  closing: GrpcError | null = null;
  /** Trailers are queued (or the call was reset): nothing more is answered. */
  finished = false;
  headersSent = false;
  /** Answers completed and not yet encoded. */
  pending: ResponseFields[] = [];
  /** Encoded answer bytes waiting for a window. */
  out: Buffer | null = null;
  outAt = 0;
  trailers: Buffer | null = null;
  deadlineUnixMs: number | undefined = undefined;
  readonly reader: FrameReader;

  constructor(
    readonly id: number,
    sendWindow: number,
    private readonly conn: UnaryConnection,
  ) {
    this.sendWindow = sendWindow;
    this.reader = new FrameReader(receiveMessageBytesMax, this);
  }

  get outBytes(): number {
    return this.out === null ? 0 : this.out.length - this.outAt;
  }

  message(buf: Buffer, start: number, end: number): void {
    if (this.halfClosed || this.finished) return; // the rest of a chunk after reading stopped
    this.conn.streamRequest(this, buf, start, end);
  }

  oversized(): void {
    if (this.halfClosed || this.finished) return;
    this.conn.streamAnswerError(this, performance.now(), null, errors.tooLarge);
  }

  compressed(): void {
    if (this.halfClosed) return;
    this.halfClosed = true;
    this.closing = errors.compressed;
    // Ends now if nothing is in flight: the client may wait for us before it half-closes.
    this.conn.maybeFinishStream(this);
  }
}

type Mode = 'sniff' | 'fast' | 'gone';

export class UnaryConnection {
  private mode: Mode = 'sniff';
  /** Sniff mode: where the next frame starts in `input`, which keeps every byte read. */
  private sniffAt = 0;
  /** Sniff mode: where the client's ACK of our SETTINGS starts in `input`, or -1. */
  private ackAt = -1;
  private wantHandoff = false;
  private timer: NodeJS.Timeout | null = null;
  /** Unparsed input (a frame cut by a chunk boundary). */
  private input: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  private decoder = new HpackDecoder();
  /** A header block in progress: HEADERS without END_HEADERS, then CONTINUATION. */
  private headerBlock: { streamId: number; flags: number; parts: Buffer[]; length: number } | null =
    null;
  private readonly calls = new Map<number, Call>();
  private readonly streams = new Map<number, StreamCall>();
  /** Stream calls with answers or trailers to write. */
  private readonly dirty = new Set<StreamCall>();
  private lastStreamId = 0;
  /** GOAWAY sent: streams above this id are refused. */
  private goawayAt: number | null = null;
  private peerGoaway = false;
  private connSendWindow = defaultWindow;
  private peerInitialWindow = defaultWindow;
  private connUnacked = 0;
  private readonly out: Array<Buffer | Answer> = [];
  /** Answers waiting for a window, by stream id: their streams are still open. */
  private readonly blocked = new Map<number, Answer>();
  private flushScheduled = false;
  /** Inside flush(): closing now would end the socket before this flush's write. */
  private flushing = false;
  private readonly flushBound = (): void => this.flush();
  private readPaused = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly host: UnaryHost,
  ) {
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    socket.write(frame(frameType.settings, 0, 0));
    this.timer = setTimeout(() => this.sniffTimeout(), sniffMs);
  }

  private readonly onError = (): void => undefined; // 'close' follows
  private readonly onClose = (): void => this.gone();
  private readonly onDrain = (): void => {
    if (this.readPaused) {
      this.readPaused = false;
      this.socket.resume();
    }
  };

  /** Open calls (being read, or at the node). */
  get openCalls(): number {
    return this.calls.size + this.streams.size;
  }

  get isFast(): boolean {
    return this.mode === 'fast';
  }

  /** Server shutdown: GOAWAY, answer what is open, then close. */
  drain(): void {
    if (this.mode === 'sniff') {
      this.wantHandoff = true;
      // A connection that has sent nothing has asked for nothing: closed now, it does not hold
      // the shutdown (grpc-js would keep it to the end of the grace). One whose ACK came goes to
      // grpc-js now, not at the sniff timer.
      if (this.input.length === 0) return this.destroy();
      if (this.ackAt >= 0) return this.handoff();
    }
    if (this.mode !== 'fast' || this.goawayAt !== null) return;
    this.goaway(this.lastStreamId, errorCode.noError);
    for (const stream of this.streams.values()) this.maybeFinishStream(stream);
    this.maybeClose();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.mode === 'gone') return; // closing: input is dropped
    this.input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    try {
      this.parse();
    } catch (err) {
      if (this.mode === 'sniff') return this.handoff();
      const code = err instanceof HpackError ? errorCode.compression : errorCode.protocol;
      this.connectionError(code, (err as Error).message);
    }
    if (this.mode === 'sniff' && this.input.length > sniffBytesMax) {
      // Not a client we would keep: grpc-js may judge it, when its ACK can be taken out.
      if (this.ackAt >= 0) this.handoff();
      else this.socket.destroy();
    }
  };

  // ---- parsing ------------------------------------------------------------------------------

  private parse(): void {
    let buf = this.input;
    let at = this.mode === 'sniff' ? this.sniffAt : 0;
    if (!this.prefaceSeen) {
      const n = Math.min(buf.length, connectionPreface.length);
      if (!buf.subarray(0, n).equals(connectionPreface.subarray(0, n))) {
        throw new Error('h2: not an HTTP/2 connection preface');
      }
      if (n < connectionPreface.length) return;
      this.prefaceSeen = true;
      at = connectionPreface.length;
    }
    while (this.mode !== 'gone' && buf.length - at >= frameHeaderLength) {
      const length = (buf[at]! << 16) | (buf[at + 1]! << 8) | buf[at + 2]!;
      if (length > maxFrameSize) throw new Error(`h2: frame of ${length} bytes`);
      if (buf.length - at < frameHeaderLength + length) break;
      const type = buf[at + 3]!;
      const flags = buf[at + 4]!;
      const streamId = buf.readUInt32BE(at + 5) & 0x7fffffff;
      const start = at + frameHeaderLength;
      const frameAt = at;
      at = start + length;
      if (this.mode === 'sniff') {
        const decided = this.sniffFrame(buf, frameAt, type, flags, streamId, start, at);
        if (decided === 'fast') {
          // Process everything from the preface on, in fast mode, with fresh HPACK state.
          this.mode = 'fast';
          this.clearTimer();
          this.host.fast();
          this.decoder = new HpackDecoder();
          this.headerBlock = null;
          buf = this.input;
          at = connectionPreface.length;
          continue;
        }
        if (decided === 'handoff') return this.handoff();
        continue;
      }
      this.onFrame(buf, type, flags, streamId, start, at);
    }
    if (this.mode === 'sniff') {
      this.sniffAt = at;
      return;
    }
    this.input = at === buf.length ? Buffer.alloc(0) : buf.subarray(at);
    if (this.mode === 'fast') {
      // Copy a cut frame's bytes: the chunk behind them may be large.
      if (this.input.length > 0) this.input = Buffer.from(this.input);
      this.giveBackWindow();
      this.scheduleFlush();
    }
  }

  /** Sniff mode: looks for our SETTINGS ACK and the first request's :path. */
  private sniffFrame(
    buf: Buffer,
    frameAt: number,
    type: number,
    flags: number,
    streamId: number,
    start: number,
    end: number,
  ): 'fast' | 'handoff' | null {
    if (type === frameType.settings && (flags & flag.ack) !== 0) {
      if (this.ackAt < 0) this.ackAt = frameAt;
      return this.wantHandoff ? 'handoff' : null;
    }
    if (this.wantHandoff) return null;
    if (type === frameType.headers || type === frameType.continuation) {
      const block = this.collectHeaderBlock(buf, type, flags, streamId, start, end);
      if (block === null) return null;
      const fields: HeaderFields = new Map();
      this.decoder.decode(block, 0, block.length, fields, headerListBytesMax);
      const p = fields.get(':path');
      if ((p === allocatePath || p === allocateStreamPath) && !this.host.draining) return 'fast';
      this.wantHandoff = true;
      return this.ackAt >= 0 ? 'handoff' : null;
    }
    return null;
  }

  private sniffTimeout(): void {
    this.timer = null;
    if (this.mode !== 'sniff') return;
    this.wantHandoff = true;
    if (this.ackAt >= 0) return this.handoff();
    // Wait for the ACK of our SETTINGS (it must not reach grpc-js), not forever. Also when
    // the preface has not come yet: the client ACKs our SETTINGS once its preface is out, and
    // an ACK handed to grpc-js acks grpc-js's own SETTINGS early, so its real ACK is
    // "unexpected" and grpc-js ends the connection. Bytes that are not HTTP/2 are handed off
    // as soon as they are seen.
    this.timer = setTimeout(() => this.socket.destroy(), settingsAckMs);
  }

  private handoff(): void {
    if (this.mode !== 'sniff') return;
    this.mode = 'gone';
    this.clearTimer();
    const socket = this.socket;
    socket.removeListener('data', this.onData);
    socket.removeListener('error', this.onError);
    socket.removeListener('close', this.onClose);
    socket.removeListener('drain', this.onDrain);
    socket.pause();
    let bytes = this.input;
    if (this.ackAt >= 0) {
      bytes = Buffer.concat([
        bytes.subarray(0, this.ackAt),
        bytes.subarray(this.ackAt + frameHeaderLength),
      ]);
    }
    this.input = Buffer.alloc(0);
    if (bytes.length > 0) socket.unshift(bytes);
    this.host.closed(this);
    this.host.handoff(this.socket);
  }

  /** Assembles HEADERS + CONTINUATION; returns the block once END_HEADERS came. */
  private collectHeaderBlock(
    buf: Buffer,
    type: number,
    flags: number,
    streamId: number,
    start: number,
    end: number,
  ): Buffer | null {
    if (type === frameType.headers) {
      if (this.headerBlock !== null) throw new Error('h2: HEADERS inside a header block');
      end = unpaddedEnd(buf, flags, start, end);
      start += flags & flag.padded ? 1 : 0;
      if (flags & flag.priority) start += 5;
      if (end < start) throw new Error('h2: HEADERS padding too long');
      const part = buf.subarray(start, end);
      if (flags & flag.endHeaders) return part;
      this.headerBlock = { streamId, flags, parts: [Buffer.from(part)], length: part.length };
      return null;
    }
    const hb = this.headerBlock;
    if (hb === null || hb.streamId !== streamId) throw new Error('h2: stray CONTINUATION');
    if (hb.parts.length > continuationFramesMax)
      throw new Error('h2: too many CONTINUATION frames');
    hb.parts.push(Buffer.from(buf.subarray(start, end)));
    hb.length += end - start;
    if (hb.length > headerListBytesMax) throw new Error('h2: header block too large');
    if ((flags & flag.endHeaders) === 0) return null;
    this.headerBlock = null;
    return Buffer.concat(hb.parts, hb.length);
  }

  private onFrame(
    buf: Buffer,
    type: number,
    flags: number,
    streamId: number,
    start: number,
    end: number,
  ): void {
    if (this.headerBlock !== null && type !== frameType.continuation) {
      throw new Error('h2: frame inside a header block');
    }
    switch (type) {
      case frameType.data:
        return this.onDataFrame(buf, flags, streamId, start, end);
      case frameType.headers:
      case frameType.continuation: {
        const first = this.headerBlock?.flags ?? flags;
        const block = this.collectHeaderBlock(buf, type, flags, streamId, start, end);
        if (block !== null) this.onHeaders(streamId, first, block);
        return;
      }
      case frameType.settings:
        return this.onSettings(buf, flags, streamId, start, end);
      case frameType.ping:
        if (streamId !== 0 || end - start !== 8) throw new Error('h2: bad PING');
        if ((flags & flag.ack) === 0) {
          this.out.push(frame(frameType.ping, flag.ack, 0, Buffer.from(buf.subarray(start, end))));
        }
        return;
      case frameType.windowUpdate:
        return this.onWindowUpdate(buf, streamId, start, end);
      case frameType.rstStream: {
        if (streamId === 0 || end - start !== 4) throw new Error('h2: bad RST_STREAM');
        const call = this.calls.get(streamId);
        if (call !== undefined) this.forget(call);
        // An answer still waiting for this stream's window: nobody to send it to.
        if (this.blocked.delete(streamId)) this.maybeClose();
        const stream = this.streams.get(streamId);
        if (stream !== undefined) this.closeStream(stream);
        return;
      }
      case frameType.goaway:
        this.peerGoaway = true;
        this.maybeClose();
        return;
      case frameType.pushPromise:
        throw new Error('h2: PUSH_PROMISE from a client');
      default:
        return; // PRIORITY and unknown types
    }
  }

  private onSettings(
    buf: Buffer,
    flags: number,
    streamId: number,
    start: number,
    end: number,
  ): void {
    if (streamId !== 0) throw new Error('h2: SETTINGS on a stream');
    if (flags & flag.ack) return;
    if ((end - start) % 6 !== 0) throw new Error('h2: SETTINGS length');
    for (let p = start; p < end; p += 6) {
      const id = buf.readUInt16BE(p);
      const value = buf.readUInt32BE(p + 2);
      if (id === setting.initialWindowSize) {
        if (value > windowMax) return this.connectionError(errorCode.flowControl, 'window');
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const call of this.calls.values()) call.sendWindow += delta;
        for (const answer of this.blocked.values()) answer.call.sendWindow += delta;
        for (const stream of this.streams.values()) {
          stream.sendWindow += delta;
          if (stream.outBytes > 0) this.markDirty(stream);
        }
        this.unblock();
      } else if (id === setting.maxFrameSize && (value < maxFrameSize || value > 2 ** 24 - 1)) {
        throw new Error('h2: SETTINGS_MAX_FRAME_SIZE out of range');
      }
    }
    this.out.push(frame(frameType.settings, flag.ack, 0));
  }

  private onWindowUpdate(buf: Buffer, streamId: number, start: number, end: number): void {
    if (end - start !== 4) throw new Error('h2: bad WINDOW_UPDATE');
    const increment = buf.readUInt32BE(start) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new Error('h2: WINDOW_UPDATE of 0');
      this.connSendWindow += increment;
      if (this.connSendWindow > windowMax) {
        return this.connectionError(errorCode.flowControl, 'window overflow');
      }
      for (const stream of this.streams.values()) {
        if (stream.outBytes > 0) this.markDirty(stream);
      }
    } else if (this.streams.has(streamId)) {
      const stream = this.streams.get(streamId) as StreamCall;
      stream.sendWindow += increment;
      this.markDirty(stream);
    } else {
      // An answered call is no longer open, but its answer may wait for this window.
      const call = this.calls.get(streamId) ?? this.blocked.get(streamId)?.call;
      if (call === undefined) return;
      call.sendWindow += increment;
    }
    this.unblock();
  }

  private onHeaders(streamId: number, flags: number, block: Buffer): void {
    const fields: HeaderFields = new Map();
    // Decoded even for a stream we refuse: the HPACK table is the connection's.
    this.decoder.decode(block, 0, block.length, fields, headerListBytesMax);
    const existing = this.calls.get(streamId);
    if (existing !== undefined) {
      // Trailers from the client: only END_STREAM matters.
      if (flags & flag.endStream) this.endOfRequest(existing);
      return;
    }
    const existingStream = this.streams.get(streamId);
    if (existingStream !== undefined) {
      if (flags & flag.endStream) this.streamHalfClosed(existingStream);
      return;
    }
    if (streamId % 2 === 0) throw new Error(`h2: HEADERS on stream ${streamId}`);
    if (streamId <= this.lastStreamId) {
      // Trailers, late, of a call answered at its headers (they end the client's half); a
      // request on a closed stream id would otherwise wait for ever (RFC 9113 5.1.1).
      if (flags & flag.endStream) return;
      throw new Error(`h2: HEADERS on closed stream ${streamId}`);
    }
    this.lastStreamId = streamId;
    if (this.goawayAt !== null || this.peerGoaway) {
      this.out.push(rstStreamFrame(streamId, errorCode.refusedStream));
      return;
    }
    const callPath = fields.get(':path');
    if (callPath === allocateStreamPath) return this.openStream(streamId, flags, fields);
    if (callPath !== allocatePath) {
      // Not ours: this connection stops taking calls; the client retries it on a new one.
      this.goaway(streamId - 2 > 0 ? streamId - 2 : 0, errorCode.noError);
      this.out.push(rstStreamFrame(streamId, errorCode.refusedStream));
      this.maybeClose();
      return;
    }
    const call = new Call(streamId, this.peerInitialWindow);
    const contentType = fields.get('content-type');
    if (contentType === undefined || !contentType.startsWith('application/grpc')) {
      this.host.refused('unary', call.startMs, GrpcStatus.UNKNOWN);
      this.queue({ call, fields: null, block: status415Block }, false);
      return;
    }
    const refusal = this.callRefusal(fields);
    if (refusal !== null) return this.refuse(call, refusal, false);
    call.deadlineUnixMs = deadlineOf(fields);
    this.calls.set(streamId, call);
    if (flags & flag.endStream) this.endOfRequest(call);
  }

  /** Why a new call is refused at its headers: too many open, an invalid grpc-timeout. */
  private callRefusal(fields: HeaderFields): GrpcError | null {
    // Answered calls whose answers wait for a window are still open streams.
    if (this.calls.size + this.streams.size + this.blocked.size >= streamsOpenMax) {
      return errors.tooManyStreams;
    }
    const timeout = fields.get('grpc-timeout');
    if (timeout !== undefined && parseGrpcTimeoutMs(timeout) === null) {
      return {
        code: GrpcStatus.INVALID_ARGUMENT,
        details: `server: invalid grpc-timeout header "${timeout.slice(0, 32)}"`,
      };
    }
    return null;
  }

  // ---- AllocateStream -----------------------------------------------------------------------

  private openStream(streamId: number, flags: number, fields: HeaderFields): void {
    const stream = new StreamCall(streamId, this.peerInitialWindow, this);
    const contentType = fields.get('content-type');
    const answerNow = (block: Buffer): void => {
      stream.finished = true;
      stream.trailers = block;
      this.streams.set(streamId, stream);
      this.markDirty(stream);
    };
    if (contentType === undefined || !contentType.startsWith('application/grpc')) {
      this.host.refused('stream', stream.startMs, GrpcStatus.UNKNOWN);
      return answerNow(status415Block);
    }
    const refusal = this.callRefusal(fields) ?? (this.host.draining ? errors.draining : null);
    if (refusal !== null) {
      this.host.refused('stream', stream.startMs, refusal.code);
      return answerNow(errorBlock(refusal));
    }
    stream.deadlineUnixMs = deadlineOf(fields);
    this.streams.set(streamId, stream);
    if (flags & flag.endStream) this.streamHalfClosed(stream);
  }

  /** One request read on a stream call. */
  streamRequest(stream: StreamCall, buf: Buffer, start: number, end: number): void {
    const startMs = performance.now();
    const request = decodeAllocateRequest(buf, start, end);
    if (request === null) return this.streamAnswerError(stream, startMs, null, errors.undecodable);
    if (this.host.draining) {
      return this.streamAnswerError(stream, startMs, request.correlationId, errors.draining);
    }
    stream.inFlight++;
    const correlationId = request.correlationId;
    this.host.allocate('stream', request, stream.deadlineUnixMs, (status, result) => {
      stream.inFlight--;
      if (stream.finished || this.mode !== 'fast') return false;
      stream.pending.push(
        status === null && result !== undefined
          ? okFields(result, correlationId)
          : errorFields(correlationId, status ?? errors.undecodable),
      );
      this.markDirty(stream);
      this.maybeFinishStream(stream);
      return true;
    });
  }

  streamAnswerError(
    stream: StreamCall,
    startMs: number,
    correlationId: Buffer | null,
    err: GrpcError,
  ): void {
    this.host.refused('stream', startMs, err.code);
    stream.pending.push(errorFields(correlationId, err));
    this.markDirty(stream);
  }

  private streamHalfClosed(stream: StreamCall): void {
    if (!stream.halfClosed && !stream.reader.atBoundary) stream.closing = counterErrors.cutOff;
    stream.halfClosed = true;
    this.maybeFinishStream(stream);
  }

  /** Ends the call once nothing is in flight and the client (or the server) is done. */
  maybeFinishStream(stream: StreamCall): void {
    if (stream.finished || stream.inFlight > 0) return;
    if (stream.halfClosed) this.endStream(stream, stream.closing);
    else if (this.host.draining) this.endStream(stream, errors.draining);
  }

  private endStream(stream: StreamCall, err: GrpcError | null): void {
    stream.finished = true;
    stream.trailers = stream.headersSent || stream.pending.length > 0 ? trailersBlock(err) : null;
    if (stream.trailers === null) {
      // Nothing was sent: one HEADERS frame with the status (trailers-only).
      stream.trailers = err === null ? okTrailersOnlyBlock : errorBlock(err);
      stream.headersSent = true;
    }
    this.markDirty(stream);
  }

  /** The stream is over for us (reset by the client, or its trailers went out). */
  private closeStream(stream: StreamCall): void {
    stream.finished = true;
    this.streams.delete(stream.id);
    this.dirty.delete(stream);
    this.maybeClose();
  }

  private markDirty(stream: StreamCall): void {
    this.dirty.add(stream);
    this.scheduleFlush();
  }

  private onDataFrame(
    buf: Buffer,
    flags: number,
    streamId: number,
    start: number,
    end: number,
  ): void {
    const frameLength = end - start;
    this.connUnacked += frameLength;
    if (streamId === 0) throw new Error('h2: DATA on stream 0');
    const stream = this.streams.get(streamId);
    if (stream !== undefined) {
      end = unpaddedEnd(buf, flags, start, end);
      start += flags & flag.padded ? 1 : 0;
      stream.unacked += frameLength;
      if (!stream.halfClosed && !stream.finished && end > start) {
        stream.reader.push(buf.subarray(start, end));
      }
      if (flags & flag.endStream) this.streamHalfClosed(stream);
      return;
    }
    const call = this.calls.get(streamId);
    if (call === undefined || call.state !== 'reading') {
      if (streamId > this.lastStreamId) throw new Error('h2: DATA on an idle stream');
      return; // a stream we answered or forgot: its bytes only count for the window
    }
    end = unpaddedEnd(buf, flags, start, end);
    start += flags & flag.padded ? 1 : 0;
    call.unacked += frameLength;
    const n = end - start;
    if (!call.tooLarge && n > 0) {
      if (call.bodyLength + n > receiveMessageBytesMax + frameHeaderBytes) {
        call.tooLarge = true;
        call.body = null;
      } else if (call.bodyLength === 0 && (flags & flag.endStream) !== 0) {
        // The usual case: the whole request in one DATA frame, read in place.
        call.bodyLength = n;
        this.endOfRequest(call, buf, start, end);
        return;
      } else {
        const body = Buffer.allocUnsafe(call.bodyLength + n);
        call.body?.copy(body, 0, 0, call.bodyLength);
        buf.copy(body, call.bodyLength, start, end);
        call.body = body;
        call.bodyLength += n;
      }
    }
    if (flags & flag.endStream) this.endOfRequest(call);
  }

  /** The client's half is complete: check it is one request, and allocate. */
  private endOfRequest(call: Call, buf?: Buffer, start = 0, end = 0): void {
    if (call.state !== 'reading') return;
    if (buf === undefined) {
      buf = call.body ?? Buffer.alloc(0);
      end = call.bodyLength;
    }
    call.body = null;
    if (call.tooLarge) return this.refuse(call, errors.tooLarge, true);
    const n = end - start;
    if (n < frameHeaderBytes) return this.refuse(call, errors.notOneMessage, true);
    const length = buf.readUInt32BE(start + 1);
    if (buf[start] !== 0) return this.refuse(call, errors.compressed, true);
    if (length > receiveMessageBytesMax) return this.refuse(call, errors.tooLarge, true);
    if (length !== n - frameHeaderBytes) return this.refuse(call, errors.notOneMessage, true);
    const request = decodeAllocateRequest(buf, start + frameHeaderBytes, end);
    if (request === null) return this.refuse(call, errors.undecodable, true);
    if (this.host.draining) return this.refuse(call, errors.draining, true);
    call.state = 'allocating';
    this.host.allocate('unary', request, call.deadlineUnixMs, (status, result) => {
      // The client is gone (reset the stream, or the connection): nobody to answer.
      if (call.state !== 'allocating' || this.mode !== 'fast') return false;
      if (status === null && result !== undefined) {
        this.queue({ call, fields: okFields(result, null), block: null }, true);
      } else {
        this.queue({ call, fields: null, block: errorBlock(status ?? errors.undecodable) }, true);
      }
      return true;
    });
  }

  private refuse(call: Call, err: GrpcError, open: boolean): void {
    this.host.refused('unary', call.startMs, err.code);
    this.queue({ call, fields: null, block: errorBlock(err) }, open);
  }

  /** Queues the call's answer; its stream is done (open: it was in `calls`). */
  private queue(answer: Answer, open: boolean): void {
    answer.call.state = 'done';
    if (open) this.calls.delete(answer.call.id);
    this.out.push(answer);
    this.scheduleFlush();
  }

  private forget(call: Call): void {
    call.state = 'done';
    this.calls.delete(call.id);
    this.maybeClose();
  }

  // ---- writing ------------------------------------------------------------------------------

  private goaway(lastStreamId: number, code: number, debug = ''): void {
    if (this.goawayAt !== null && code === errorCode.noError) return;
    this.goawayAt = lastStreamId;
    this.out.push(goawayFrame(lastStreamId, code, debug));
    this.scheduleFlush();
  }

  private connectionError(code: number, debug: string): void {
    if (this.mode === 'gone') return;
    this.goaway(this.lastStreamId, code, debug);
    this.flush();
    this.mode = 'gone';
    this.closeSocket();
  }

  private giveBackWindow(): void {
    if (this.connUnacked >= 16_384) {
      this.out.push(windowUpdateFrame(0, this.connUnacked));
      this.connUnacked = 0;
    }
    for (const call of this.calls.values()) {
      if (call.state === 'reading' && call.unacked >= 16_384) {
        this.out.push(windowUpdateFrame(call.id, call.unacked));
        call.unacked = 0;
      }
    }
    for (const stream of this.streams.values()) {
      // A client that sends faster than the node answers, or reads its answers slower, gets
      // no more window on this stream until it catches up.
      if (
        stream.unacked >= 16_384 &&
        !stream.finished &&
        stream.inFlight < streamInFlightMax &&
        stream.outBytes < streamPendingWriteBytesMax
      ) {
        this.out.push(windowUpdateFrame(stream.id, stream.unacked));
        stream.unacked = 0;
      }
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.mode === 'gone') return;
    this.flushScheduled = true;
    queueMicrotask(this.flushBound);
  }

  /** Moves answers whose windows opened back to the output. */
  private unblock(): void {
    if (this.blocked.size === 0) return;
    for (const a of this.blocked.values()) {
      if (Math.min(this.connSendWindow, a.call.sendWindow) <= 0) continue;
      this.blocked.delete(a.call.id);
      this.out.push(a);
    }
    this.scheduleFlush();
  }

  private fits(a: Answer): boolean {
    const bytes = responseFrameBytes(a.fields as ResponseFields);
    return bytes <= this.connSendWindow && bytes <= a.call.sendWindow;
  }

  /**
   * A response the windows do not hold whole: HEADERS, then as much of the message as they
   * allow; the rest waits (blocked) for WINDOW_UPDATEs, then the trailers.
   */
  private writeAnswerInPieces(item: Answer, buf: Buffer, at: number): number {
    const id = item.call.id;
    const n = Math.min(this.connSendWindow, item.call.sendWindow, maxFrameSize);
    if (n <= 0) {
      this.blocked.set(id, item);
      return at;
    }
    if (item.rest === undefined) {
      const flags = flag.endHeaders;
      at = writeFrameHeader(buf, at, responseHeadersBlock.length, frameType.headers, flags, id);
      at += responseHeadersBlock.copy(buf, at);
      const message = Buffer.allocUnsafe(responseFrameBytes(item.fields as ResponseFields));
      writeResponseFrame(message, 0, item.fields as ResponseFields);
      item.rest = message;
    }
    const take = Math.min(n, item.rest.length);
    at = writeFrameHeader(buf, at, take, frameType.data, 0, id);
    at += item.rest.copy(buf, at, 0, take);
    item.rest = item.rest.subarray(take);
    this.connSendWindow -= take;
    item.call.sendWindow -= take;
    if (item.rest.length > 0) {
      this.blocked.set(id, item);
      return at;
    }
    const flags = flag.endHeaders | flag.endStream;
    at = writeFrameHeader(buf, at, okTrailersBlock.length, frameType.headers, flags, id);
    return at + okTrailersBlock.copy(buf, at);
  }

  /** Everything queued, in order, in one write. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.socket.destroyed || this.mode === 'gone') {
      this.out.length = 0;
      this.dirty.clear();
      return;
    }
    if (this.streams.size > 0) this.giveBackWindow();
    if (this.out.length === 0 && this.dirty.size === 0) return;
    let bound = 0;
    for (const stream of this.dirty) {
      if (stream.pending.length > 0) {
        const bytes = encodeResponseFrames(stream.pending);
        stream.pending.length = 0;
        stream.out =
          stream.outBytes === 0
            ? bytes
            : Buffer.concat([(stream.out as Buffer).subarray(stream.outAt), bytes]);
        stream.outAt = 0;
      }
      const frames = Math.ceil(stream.outBytes / maxFrameSize) + 2;
      bound +=
        frames * frameHeaderLength +
        responseHeadersBlock.length +
        stream.outBytes +
        (stream.trailers?.length ?? 0);
    }
    for (const item of this.out) {
      if (!isAnswer(item)) bound += item.length;
      else if (item.fields !== null) {
        bound +=
          3 * frameHeaderLength +
          responseHeadersBlock.length +
          responseFrameBytes(item.fields) +
          okTrailersBlock.length;
      } else bound += frameHeaderLength + (item.block as Buffer).length;
    }
    const buf = Buffer.allocUnsafe(bound);
    let at = 0;
    for (const item of this.out) {
      if (!isAnswer(item)) {
        at += item.copy(buf, at);
      } else if (item.fields === null) {
        const block = item.block as Buffer;
        const flags = flag.endHeaders | flag.endStream;
        at = writeFrameHeader(buf, at, block.length, frameType.headers, flags, item.call.id);
        at += block.copy(buf, at);
      } else if (item.rest !== undefined || !this.fits(item)) {
        at = this.writeAnswerInPieces(item, buf, at);
      } else {
        at = writeFrameHeader(
          buf,
          at,
          responseHeadersBlock.length,
          frameType.headers,
          flag.endHeaders,
          item.call.id,
        );
        at += responseHeadersBlock.copy(buf, at);
        const dataAt = at;
        at = writeResponseFrame(buf, at + frameHeaderLength, item.fields);
        const dataLength = at - dataAt - frameHeaderLength;
        writeFrameHeader(buf, dataAt, dataLength, frameType.data, 0, item.call.id);
        this.connSendWindow -= dataLength;
        item.call.sendWindow -= dataLength;
        at = writeFrameHeader(
          buf,
          at,
          okTrailersBlock.length,
          frameType.headers,
          flag.endHeaders | flag.endStream,
          item.call.id,
        );
        at += okTrailersBlock.copy(buf, at);
      }
    }
    this.out.length = 0;
    this.flushing = true;
    for (const stream of this.dirty) at = this.writeStream(stream, buf, at);
    this.flushing = false;
    this.dirty.clear();
    if (at > 0 && !this.socket.write(buf.subarray(0, at)) && !this.readPaused) {
      // A client that does not read its answers: stop reading its requests meanwhile.
      this.readPaused = true;
      this.socket.pause();
    }
    this.maybeClose();
  }

  /** A stream call's headers, answers (as far as the windows allow) and trailers, at buf[at]. */
  private writeStream(stream: StreamCall, buf: Buffer, at: number): number {
    const id = stream.id;
    if (!stream.headersSent && stream.outBytes > 0) {
      at = writeFrameHeader(
        buf,
        at,
        responseHeadersBlock.length,
        frameType.headers,
        flag.endHeaders,
        id,
      );
      at += responseHeadersBlock.copy(buf, at);
      stream.headersSent = true;
    }
    while (stream.outBytes > 0) {
      const n = Math.min(stream.outBytes, this.connSendWindow, stream.sendWindow, maxFrameSize);
      if (n <= 0) return at; // waits for a WINDOW_UPDATE
      at = writeFrameHeader(buf, at, n, frameType.data, 0, id);
      at += (stream.out as Buffer).copy(buf, at, stream.outAt, stream.outAt + n);
      stream.outAt += n;
      this.connSendWindow -= n;
      stream.sendWindow -= n;
    }
    stream.out = null;
    stream.outAt = 0;
    if (stream.trailers !== null) {
      const flags = flag.endHeaders | flag.endStream;
      at = writeFrameHeader(buf, at, stream.trailers.length, frameType.headers, flags, id);
      at += stream.trailers.copy(buf, at);
      stream.trailers = null;
      this.closeStream(stream);
    }
    return at;
  }

  private maybeClose(): void {
    if (this.mode !== 'fast' || this.flushing) return;
    if ((this.goawayAt === null && !this.peerGoaway) || this.calls.size > 0) return;
    if (this.streams.size > 0) return;
    if (this.out.length > 0 || this.blocked.size > 0) return;
    this.mode = 'gone';
    this.closeSocket();
  }

  /**
   * Ends the socket once what is queued is written. A client that reads slowly (a GC pause, a
   * busy host) may take longer than a second to take our answers: the socket is destroyed a
   * second after they are all written (a client that never closes its side), at the latest
   * after closeWriteMsMax, or by the Frontend at the end of the shutdown grace. Input that
   * still comes is read and dropped: closing with unread input resets the connection, and a
   * reset makes the client's kernel drop answers it received but has not read yet.
   */
  private closeSocket(): void {
    if (this.readPaused) {
      this.readPaused = false;
      this.socket.resume();
    }
    this.socket.once('finish', () => setTimeout(() => this.socket.destroy(), 1000).unref());
    // A client that never reads does not keep the socket for ever.
    setTimeout(() => this.socket.destroy(), closeWriteMsMax).unref();
    this.socket.end();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private gone(): void {
    if (this.mode === 'sniff' || this.mode === 'fast') this.mode = 'gone';
    this.clearTimer();
    for (const call of this.calls.values()) call.state = 'done';
    this.calls.clear();
    for (const stream of this.streams.values()) stream.finished = true;
    this.streams.clear();
    this.dirty.clear();
    this.host.closed(this);
  }
}

/**
 * Where a HEADERS or DATA payload ends without its padding (PADDED: a length byte first, that
 * many bytes of padding last). A padded frame too short for its own padding is a connection
 * error (RFC 9113 6.1), also when it is empty.
 */
function unpaddedEnd(buf: Buffer, flags: number, start: number, end: number): number {
  if ((flags & flag.padded) === 0) return end;
  if (end <= start) throw new Error('h2: a padded frame without its pad length');
  const stop = end - (buf[start] as number);
  if (stop < start + 1) throw new Error('h2: padding longer than the frame');
  return stop;
}

/** The call's deadline from a grpc-timeout already checked by callRefusal(). */
function deadlineOf(fields: HeaderFields): number | undefined {
  const timeout = fields.get('grpc-timeout');
  const ms = timeout === undefined ? null : parseGrpcTimeoutMs(timeout);
  return ms === null ? undefined : Date.now() + ms;
}

function isAnswer(item: Buffer | Answer): item is Answer {
  return (item as Partial<Answer>).call !== undefined;
}
