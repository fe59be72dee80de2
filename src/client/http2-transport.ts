/**
 * AllocateTransport over node:http2 with the hand-written Counter codec the server uses
 * (src/core/grpc-wire.ts): the client library's default. grpc-js costs the client several times
 * more CPU per allocation than the server spends on it; this speaks the same gRPC on the wire
 * (HTTP/2, length-prefixed protobuf, grpc-status trailers) for one method, AllocateStream.
 *
 * One HTTP/2 session per node address, opened on first use and replaced when it closes or the
 * node sends GOAWAY. Requests written in one turn of the event loop leave in one DATA write.
 * Keepalive: a PING clientKeepaliveTimeMs after the last ack, also between calls; a PING
 * unanswered for clientKeepaliveTimeoutMs destroys the session, so a node gone silent (paused,
 * partitioned: no reset ever comes) fails its streams with UNAVAILABLE within 0.5–0.75 s. A new
 * session whose node has not sent its HTTP/2 SETTINGS within clientConnectTimeoutMs (a paused
 * process whose kernel still accepts the TCP connection, a SYN dropped by a partition) is given
 * up the same way.
 *
 * Plaintext only: TLS and custom channel options go through GrpcTransport (grpc-js), which
 * TallyClient picks when given credentials or channelOptions.
 */
import * as http2 from 'node:http2';
import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  clientConnectTimeoutMs,
  clientKeepaliveTimeMs,
  clientKeepaliveTimeoutMs,
} from '../core/limits';
import {
  type AllocateResponseView,
  allocateRequestFrameMax,
  decodeAllocateResponse,
  FrameReader,
  type FrameSink,
  writeAllocateRequestFrame,
} from '../core/grpc-wire';
import { primaryAddressKey } from '../core/wire';
import type {
  AllocateTransport,
  StreamEnd,
  StreamEvents,
  TransportStream,
  WireRequest,
} from './transport';

/** Largest response message accepted (ours are tens of bytes). */
const receiveMessageBytesMax = 4 * 1024 * 1024;
/** Smallest buffer requests are batched into before one write. */
const scratchBytes = 16 * 1024;

const userAgent = 'tally-node-client/0.1';
const allocateStreamHeaders: http2.OutgoingHttpHeaders = Object.freeze({
  ':method': 'POST',
  ':path': '/tally.v1.Counter/AllocateStream',
  'content-type': 'application/grpc',
  te: 'trailers',
  'grpc-accept-encoding': 'identity',
  'user-agent': userAgent,
});

export interface Http2TransportOptions {
  /** PING interval and ack timeout (default clientKeepaliveTimeMs / clientKeepaliveTimeoutMs). */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /** How long a new connection may take to complete the HTTP/2 handshake (clientConnectTimeoutMs). */
  connectTimeoutMs?: number;
}

/** One HTTP/2 session to one node, with its keepalive. */
class Connection {
  readonly session: http2.ClientHttp2Session;
  /** Why the session failed (connect refused, keepalive timeout), for the streams' status. */
  failure: string | null = null;
  private streams = 0;
  private readonly pingTimer: NodeJS.Timeout;
  private ackTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly address: string,
    private readonly opts: Required<Http2TransportOptions>,
    private readonly onGone: (c: Connection) => void,
  ) {
    this.session = http2.connect(`http://${address}`, {
      settings: { enablePush: false },
    });
    this.session.on('error', (err: Error) => (this.failure ??= err.message));
    this.session.on('goaway', () => this.onGone(this));
    this.session.on('close', () => {
      this.stopTimers();
      this.onGone(this);
    });
    this.session.unref();
    this.pingTimer = setInterval(() => this.ping(), opts.keepaliveTimeMs);
    this.pingTimer.unref();
    const connectTimeoutMs = opts.connectTimeoutMs;
    this.ackTimer = setTimeout(
      () =>
        this.destroy(
          `client: ${address} did not complete the HTTP/2 handshake within ${connectTimeoutMs} ms`,
        ),
      connectTimeoutMs,
    );
    this.ackTimer.unref();
    this.session.once('remoteSettings', () => this.clearAckTimer());
  }

  private clearAckTimer(): void {
    if (this.ackTimer !== null) clearTimeout(this.ackTimer);
    this.ackTimer = null;
  }

  get usable(): boolean {
    return !this.session.closed && !this.session.destroyed;
  }

  /** A stream opened on this session: the session keeps the process alive while any is open. */
  opened(): void {
    if (this.streams++ === 0) this.session.ref();
  }

  closed(): void {
    if (--this.streams === 0 && !this.session.destroyed) this.session.unref();
  }

  destroy(reason: string): void {
    this.failure ??= reason;
    this.stopTimers();
    this.session.destroy();
  }

  /** The handshake timer, then each PING's ack timer: one runs at a time. */
  private ping(): void {
    if (this.ackTimer !== null || !this.usable) return;
    const sent = this.session.ping((err) => {
      this.clearAckTimer();
      if (err !== null) this.failure ??= err.message;
    });
    if (!sent) return;
    this.ackTimer = setTimeout(
      () =>
        this.destroy(
          `client: keepalive: ${this.address} did not answer a PING within ${this.opts.keepaliveTimeoutMs} ms`,
        ),
      this.opts.keepaliveTimeoutMs,
    );
    this.ackTimer.unref();
  }

  private stopTimers(): void {
    clearInterval(this.pingTimer);
    this.clearAckTimer();
  }
}

export class Http2Transport implements AllocateTransport {
  private readonly connections = new Map<string, Connection>();
  private readonly opts: Required<Http2TransportOptions>;

  constructor(opts: Http2TransportOptions = {}) {
    this.opts = {
      keepaliveTimeMs: opts.keepaliveTimeMs ?? clientKeepaliveTimeMs,
      keepaliveTimeoutMs: opts.keepaliveTimeoutMs ?? clientKeepaliveTimeoutMs,
      connectTimeoutMs: opts.connectTimeoutMs ?? clientConnectTimeoutMs,
    };
  }

  open(address: string, events: StreamEvents): TransportStream {
    let conn: Connection;
    let stream: http2.ClientHttp2Stream;
    try {
      conn = this.connection(address);
      stream = conn.session.request(allocateStreamHeaders);
    } catch (err) {
      // A bad address, or a session that closed this very turn: the call fails like a refused
      // connection, asynchronously, as events expects.
      const details = `client: cannot open a stream to ${address}: ${(err as Error).message}`;
      process.nextTick(() => events.end({ code: GrpcStatus.UNAVAILABLE, details }));
      const noop = (): void => undefined;
      return { write: noop, end: noop, cancel: noop };
    }
    return new Http2Call(conn, stream, events);
  }

  close(): void {
    for (const conn of this.connections.values()) conn.destroy('client: closed');
    this.connections.clear();
  }

  private connection(address: string): Connection {
    const existing = this.connections.get(address);
    if (existing !== undefined && existing.usable) return existing;
    const conn = new Connection(address, this.opts, (gone) => {
      if (this.connections.get(address) === gone) this.connections.delete(address);
    });
    this.connections.set(address, conn);
    return conn;
  }
}

/** One AllocateStream call. */
class Http2Call implements TransportStream, FrameSink {
  /** Requests written this turn, encoded; copied out (small: from Node's pool) at the flush. */
  private readonly scratch = Buffer.allocUnsafe(scratchBytes);
  private outLength = 0;
  private flushScheduled = false;
  private halfClose = false;
  private nsText = '';
  private nsBytes = Buffer.alloc(0);
  private status: StreamEnd | null = null;
  private protocolError: string | null = null;
  private cancelled = false;
  private streamError: string | null = null;
  private done = false;
  private readonly reader: FrameReader;
  private readonly view: AllocateResponseView = {
    first: 0,
    count: 0,
    correlationId: 0,
    epoch: 0,
    index: 0,
    error: null,
  };

  constructor(
    private readonly conn: Connection,
    private readonly stream: http2.ClientHttp2Stream,
    private readonly events: StreamEvents,
  ) {
    conn.opened();
    this.reader = new FrameReader(receiveMessageBytesMax, this);
    stream.on('response', (headers) => this.onHeaders(headers, true));
    stream.on('trailers', (headers) => this.onHeaders(headers, false));
    stream.on('data', (chunk: Buffer) => {
      if (this.protocolError === null) this.reader.push(chunk);
    });
    stream.on('end', () => {
      // The node finished the call: close our side too (as grpc-js does), or it would wait
      // for our END_STREAM.
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    });
    stream.on('error', (err: Error) => (this.streamError ??= err.message)); // reported at close
    stream.on('close', () => this.finish());
  }

  write(req: WireRequest): void {
    if (this.done || this.halfClose) return;
    if (req.namespace !== this.nsText) {
      this.nsText = req.namespace;
      this.nsBytes = Buffer.from(req.namespace, 'utf8');
    }
    // A namespace is at most 64 bytes: a frame always fits an empty scratch buffer.
    if (scratchBytes - this.outLength < allocateRequestFrameMax(this.nsBytes.length)) this.flush();
    this.outLength = writeAllocateRequestFrame(
      this.scratch,
      this.outLength,
      this.nsBytes,
      req.count,
      req.correlationId,
    );
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushBound);
    }
  }

  private readonly flushBound = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  end(): void {
    if (this.done || this.halfClose) return;
    this.flush();
    this.halfClose = true;
    this.stream.end();
  }

  cancel(): void {
    if (this.done) return;
    this.cancelled = true;
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  // FrameSink: every message is one AllocateResponse.
  message(buf: Buffer, start: number, end: number): void {
    const v = this.view;
    if (!decodeAllocateResponse(buf, start, end, v)) {
      return this.fail('client: the node sent bytes that are not a tally.v1.AllocateResponse');
    }
    this.events.response({
      first: v.first,
      count: v.count,
      correlationId: v.correlationId,
      epoch: v.epoch,
      index: v.index,
      error: v.error,
    });
  }

  oversized(length: number): void {
    this.fail(`client: the node sent a ${length}-byte message (limit ${receiveMessageBytesMax})`);
  }

  compressed(): void {
    this.fail('client: the node sent a compressed message; this client offers identity only');
  }

  private flush(): void {
    if (this.outLength === 0) return;
    // The stream holds what it is given until it is sent: a copy, so the scratch is reused.
    // (A fresh 4 KiB+ buffer per flush is an external allocation each time, and the GC ran
    // 4-9 ms scavenges every ~120 ms for them at 50K allocations/s.)
    const chunk = Buffer.from(this.scratch.subarray(0, this.outLength));
    this.outLength = 0;
    if (!this.done && !this.stream.closed) this.stream.write(chunk);
  }

  /** The node broke the protocol: the call ends with INTERNAL (the client moves on). */
  private fail(details: string): void {
    if (this.protocolError !== null) return;
    this.protocolError = details;
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  private onHeaders(headers: http2.IncomingHttpHeaders, initial: boolean): void {
    const grpcStatus = headers['grpc-status'];
    if (grpcStatus === undefined) {
      const httpStatus = Number(headers[':status']);
      if (initial && httpStatus !== 200 && headers[':status'] !== undefined) {
        this.status = {
          code: httpToGrpcStatus(httpStatus),
          details: `client: ${this.conn.address} answered HTTP ${httpStatus}`,
        };
      }
      return;
    }
    const code = Number(grpcStatus);
    this.status = {
      code: Number.isInteger(code) && code >= 0 ? code : GrpcStatus.UNKNOWN,
      details: percentDecode(String(headers['grpc-message'] ?? '')),
    };
    const hint = headers[primaryAddressKey];
    if (typeof hint === 'string' && hint !== '') this.status.primaryAddress = hint;
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.conn.closed();
    this.outLength = 0;
    this.events.end(this.endStatus());
  }

  private endStatus(): StreamEnd {
    if (this.protocolError !== null) {
      return { code: GrpcStatus.INTERNAL, details: this.protocolError };
    }
    if (this.status !== null) return this.status;
    if (this.cancelled) return { code: GrpcStatus.CANCELLED, details: 'client: cancelled' };
    const failure = this.conn.failure ?? this.streamError;
    if (failure !== null || this.conn.session.destroyed) {
      return {
        code: GrpcStatus.UNAVAILABLE,
        details: `client: connection to ${this.conn.address} lost: ${failure ?? 'closed'}`,
      };
    }
    const c = http2.constants;
    const rst = this.stream.rstCode;
    if (rst === c.NGHTTP2_REFUSED_STREAM) {
      return { code: GrpcStatus.UNAVAILABLE, details: 'client: the node refused the stream' };
    }
    if (rst === c.NGHTTP2_CANCEL) {
      return { code: GrpcStatus.CANCELLED, details: 'client: the node cancelled the stream' };
    }
    if (rst === c.NGHTTP2_ENHANCE_YOUR_CALM) {
      return { code: GrpcStatus.RESOURCE_EXHAUSTED, details: 'client: ENHANCE_YOUR_CALM' };
    }
    return {
      code: GrpcStatus.INTERNAL,
      details: `client: the stream closed without a status (RST_STREAM ${rst ?? 'none'})`,
    };
  }
}

/** gRPC's mapping of an HTTP status that came without grpc-status. */
function httpToGrpcStatus(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** grpc-message is percent-encoded (gRPC over HTTP/2). */
function percentDecode(text: string): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
