/**
 * tally.v1.Counter: unary Allocate and pipelined AllocateStream. This is the hot path, so it is
 * served on Node's http2 streams directly, with the gRPC framing and protobuf done by hand
 * (grpc-wire.ts): grpc-js costs several times more CPU per message than the allocation itself.
 * The grpc-js server still owns the port, the sessions, keepalive and the other services; it
 * hands Counter's streams over by path (server.ts). Per request: no info-level logging, no
 * sync I/O, one small object; responses completed together leave in one write per stream.
 *
 * Range and namespace checks live in the node (InvalidArgumentError); the handlers only check
 * that the bytes are a well-formed request.
 */
import type * as http2 from 'node:http2';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { TallyError } from '../core/errors';
import {
  receiveMessageBytesMax,
  streamInFlightMax,
  streamPendingWriteBytesMax,
} from '../core/limits';
import type { Metrics } from '../core/metrics';
import type { AllocateResult, CounterNode } from '../node/types';
import {
  type AllocateRequestView,
  decodeAllocateRequest,
  encodeResponseFrames,
  FrameReader,
  type FrameSink,
  parseGrpcTimeoutMs,
  type ResponseFields,
} from '../core/grpc-wire';
import { counterErrors as errors, errorFields, grpcMessage, okFields } from './counter-errors';
import type { CounterMethod } from './h2/unary-connection';
import { type GrpcError, statusName, toGrpcError } from './status';

const counterPaths = {
  allocate: '/tally.v1.Counter/Allocate',
  allocateStream: '/tally.v1.Counter/AllocateStream',
} as const;

/** Handles one incoming http2 stream whose :path this service owns. */
export type StreamRoute = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
) => void;

export interface CounterServiceOptions {
  node: CounterNode;
  logger: Logger;
  metrics: Metrics;
}

const responseHeaders: http2.OutgoingHttpHeaders = Object.freeze({
  ':status': 200,
  'content-type': 'application/grpc+proto',
  'grpc-accept-encoding': 'identity',
});
const okTrailers: http2.OutgoingHttpHeaders = Object.freeze({ 'grpc-status': '0' });

/** Status trailers (or trailers-only headers) for an error, with its metadata. */
function statusHeaders(err: GrpcError): http2.OutgoingHttpHeaders {
  return {
    ...err.metadata?.toHttp2Headers(),
    'grpc-status': String(err.code),
    'grpc-message': grpcMessage(err.details),
  };
}

function closed(stream: http2.ServerHttp2Stream): boolean {
  return stream.destroyed || stream.closed;
}

/** Answers a call that has sent nothing yet with a status alone (gRPC "trailers-only"). */
function respondTrailersOnly(stream: http2.ServerHttp2Stream, err: GrpcError): void {
  if (closed(stream) || stream.headersSent) return;
  stream.respond({ ...responseHeaders, ...statusHeaders(err) }, { endStream: true });
}

/**
 * The request headers every call checks. Returns the call's deadline (undefined: none), or
 * null once the call was refused (not gRPC, or an invalid grpc-timeout).
 */
function openCall(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
): { deadlineUnixMs: number | undefined } | null {
  stream.on('error', () => undefined); // a reset stream: 'close' does the cleanup
  const contentType = headers['content-type'];
  if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
    if (!closed(stream)) stream.respond({ ':status': 415 }, { endStream: true });
    return null;
  }
  const timeout = headers['grpc-timeout'];
  if (typeof timeout !== 'string') return { deadlineUnixMs: undefined };
  const ms = parseGrpcTimeoutMs(timeout);
  if (ms === null) {
    respondTrailersOnly(stream, {
      code: GrpcStatus.INVALID_ARGUMENT,
      details: `server: invalid grpc-timeout header "${timeout.slice(0, 32)}"`,
    });
    return null;
  }
  return { deadlineUnixMs: Date.now() + ms };
}

/** Per-method metric children, resolved once so the hot path does no label lookups. */
export class MethodMetrics {
  private readonly ok;
  private readonly ids;
  private readonly duration;
  constructor(
    private readonly metrics: Metrics,
    private readonly method: string,
  ) {
    this.ok = metrics.requests.labels(method, 'OK');
    this.ids = metrics.idsAllocated.labels();
    this.duration = metrics.requestDurationSeconds.labels(method);
  }

  succeeded(startMs: number, count: number): void {
    this.ok.inc();
    this.ids.inc(count);
    this.duration.observe((performance.now() - startMs) / 1000);
  }

  failed(startMs: number, code: number): void {
    this.metrics.requests.labels(this.method, statusName(code)).inc();
    this.duration.observe((performance.now() - startMs) / 1000);
  }
}

export class CounterService {
  readonly node: CounterNode;
  readonly logger: Logger;
  readonly unaryMetrics: MethodMetrics;
  readonly streamMetrics: MethodMetrics;
  /** The http2 stream handlers, by :path. */
  readonly routes: ReadonlyMap<string, StreamRoute>;
  private readonly streams = new Set<AllocationStream>();
  private drainingFlag = false;

  constructor(opts: CounterServiceOptions) {
    this.node = opts.node;
    this.logger = opts.logger;
    this.unaryMetrics = new MethodMetrics(opts.metrics, 'Allocate');
    this.streamMetrics = new MethodMetrics(opts.metrics, 'AllocateStream');
    this.routes = new Map<string, StreamRoute>([
      [counterPaths.allocate, (stream, headers) => this.allocate(stream, headers)],
      [counterPaths.allocateStream, (stream, headers) => this.openStream(stream, headers)],
    ]);
  }

  get draining(): boolean {
    return this.drainingFlag;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /**
   * Shutdown: streams take no new requests and end (UNAVAILABLE) once the requests already
   * handed to the node are answered, so long-lived streams cannot hold shutdown open.
   */
  drain(): void {
    this.drainingFlag = true;
    for (const stream of [...this.streams]) stream.maybeFinish();
  }

  forget(stream: AllocationStream): void {
    this.streams.delete(stream);
  }

  /** The status a failed allocation gets (logs unexpected errors). */
  statusOf(err: TallyError | null): GrpcError {
    return toGrpcError(err, this.logger);
  }

  /**
   * Allocate from the frame-level server (h2/unary-connection.ts), unary or one request of an
   * AllocateStream: the request is well-formed; done() says whether the caller was still
   * there to be answered.
   */
  frameAllocate(
    method: CounterMethod,
    request: AllocateRequestView,
    deadlineUnixMs: number | undefined,
    done: (status: GrpcError | null, result: AllocateResult | undefined) => boolean,
  ): void {
    const startMs = performance.now();
    const metrics = method === 'unary' ? this.unaryMetrics : this.streamMetrics;
    this.node.allocate(request.namespace, request.count, deadlineUnixMs, (err, result) => {
      const status = err === null && result !== undefined ? null : this.statusOf(err);
      if (!done(status, result)) metrics.failed(startMs, GrpcStatus.CANCELLED);
      else if (status === null) metrics.succeeded(startMs, (result as AllocateResult).count);
      else metrics.failed(startMs, status.code);
    });
  }

  /** A request the frame-level server refused before it reached the node. */
  frameRefused(method: CounterMethod, startMs: number, code: number): void {
    (method === 'unary' ? this.unaryMetrics : this.streamMetrics).failed(startMs, code);
  }

  private allocate(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const startMs = performance.now();
    const call = openCall(stream, headers);
    if (call === null) return;
    let request: AllocateRequestView | null = null;
    let messages = 0;
    let answered = false;
    const refuse = (err: GrpcError): void => {
      if (answered) return;
      answered = true;
      this.unaryMetrics.failed(startMs, err.code);
      respondTrailersOnly(stream, err);
    };
    const reader = new FrameReader(receiveMessageBytesMax, {
      message: (buf, start, end) => {
        messages++;
        if (messages === 1) request = decodeAllocateRequest(buf, start, end);
      },
      oversized: () => refuse(errors.tooLarge),
      compressed: () => refuse(errors.compressed),
    });
    stream.on('data', (chunk: Buffer) => {
      if (!answered) reader.push(chunk);
    });
    stream.on('end', () => {
      if (answered) return;
      if (messages !== 1 || !reader.atBoundary) return refuse(errors.notOneMessage);
      if (request === null) return refuse(errors.undecodable);
      if (this.drainingFlag) return refuse(errors.draining);
      answered = true;
      this.node.allocate(request.namespace, request.count, call.deadlineUnixMs, (err, result) => {
        if (closed(stream)) {
          // The client is gone (cancelled, or its deadline passed): nobody to answer.
          this.unaryMetrics.failed(startMs, GrpcStatus.CANCELLED);
        } else if (err === null && result !== undefined) {
          this.unaryMetrics.succeeded(startMs, result.count);
          stream.respond(responseHeaders, { waitForTrailers: true });
          stream.once('wantTrailers', () => stream.sendTrailers(okTrailers));
          stream.end(encodeResponseFrames([okFields(result, null)]));
        } else {
          const status = this.statusOf(err);
          this.unaryMetrics.failed(startMs, status.code);
          respondTrailersOnly(stream, status);
        }
      });
    });
  }

  private openStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const call = openCall(stream, headers);
    if (call === null) return;
    if (this.drainingFlag) return respondTrailersOnly(stream, errors.draining);
    this.streams.add(new AllocationStream(stream, this, call.deadlineUnixMs));
  }
}

/**
 * One AllocateStream call. Every request read is handed to the node and answered exactly
 * once, in completion order, unless the call ended first (then the result is dropped: the
 * IDs stay allocated but unacknowledged, which the invariants allow). Responses completed in
 * the same tick are framed into one buffer and written once.
 */
class AllocationStream implements FrameSink {
  private inFlight = 0;
  private readPaused = false;
  private writeBlocked = false;
  /** No more requests are read: the client half-closed, or its input was unreadable. */
  private halfClosed = false;
  /** Why reading stopped early; the call ends with this status once in-flight work is done. */
  private closing: GrpcError | null = null;
  /** Set once the call is ended by us or reset by the peer: never write again. */
  private finished = false;
  private pending: ResponseFields[] = [];
  private flushScheduled = false;
  private trailers = okTrailers;
  private readonly reader = new FrameReader(receiveMessageBytesMax, this);
  private readonly flushBound = (): void => this.flush();

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly service: CounterService,
    private readonly deadlineUnixMs: number | undefined,
  ) {
    stream.on('data', (chunk: Buffer) => {
      if (!this.finished && !this.halfClosed) this.reader.push(chunk);
    });
    stream.on('end', () => {
      if (!this.reader.atBoundary) this.stopReading(errors.cutOff);
      this.halfClosed = true;
      this.maybeFinish();
    });
    stream.on('close', () => this.abandon());
  }

  /** FrameSink: one request. */
  message(buf: Buffer, start: number, end: number): void {
    if (this.halfClosed || this.finished) return; // the rest of a chunk after reading stopped
    const startMs = performance.now();
    const req = decodeAllocateRequest(buf, start, end);
    if (req === null) return this.answerError(startMs, null, errors.undecodable);
    if (this.service.draining) return this.answerError(startMs, req.correlationId, errors.draining);
    this.inFlight++;
    if (this.inFlight >= streamInFlightMax) this.pauseReading();
    const correlationId = req.correlationId;
    this.service.node.allocate(req.namespace, req.count, this.deadlineUnixMs, (err, result) =>
      this.onResult(startMs, correlationId, err, result),
    );
  }

  /** FrameSink: a request above the size limit (its correlation id is unknown). */
  oversized(): void {
    if (this.halfClosed || this.finished) return;
    this.answerError(performance.now(), null, errors.tooLarge);
  }

  /** FrameSink: compression was not negotiated, so the stream cannot be read on. */
  compressed(): void {
    this.stopReading(errors.compressed);
    this.maybeFinish();
  }

  private onResult(
    startMs: number,
    correlationId: Buffer | null,
    err: TallyError | null,
    result: AllocateResult | undefined,
  ): void {
    this.inFlight--;
    if (this.finished) {
      this.service.streamMetrics.failed(startMs, GrpcStatus.CANCELLED);
      return;
    }
    if (err === null && result !== undefined) {
      this.service.streamMetrics.succeeded(startMs, result.count);
      this.queue(okFields(result, correlationId));
    } else {
      this.answerError(startMs, correlationId, this.service.statusOf(err));
    }
    this.maybeResume();
    this.maybeFinish();
  }

  private answerError(startMs: number, correlationId: Buffer | null, status: GrpcError): void {
    this.service.streamMetrics.failed(startMs, status.code);
    this.queue(errorFields(correlationId, status));
  }

  private queue(fields: ResponseFields): void {
    this.pending.push(fields);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushBound);
    }
  }

  /** Writes every queued response in one buffer (headers first, once). */
  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0 || closed(this.stream)) {
      this.pending.length = 0;
      return;
    }
    if (!this.stream.headersSent) {
      this.stream.respond(responseHeaders, { waitForTrailers: true });
      this.stream.once('wantTrailers', () => this.stream.sendTrailers(this.trailers));
    }
    const frames = encodeResponseFrames(this.pending);
    this.pending.length = 0;
    this.stream.write(frames);
    if (!this.writeBlocked && this.stream.writableLength >= streamPendingWriteBytesMax) {
      // A reader that does not keep up: stop reading its requests until its buffer drains.
      this.writeBlocked = true;
      this.pauseReading();
      this.stream.once('drain', () => {
        this.writeBlocked = false;
        this.maybeResume();
      });
    }
  }

  private pauseReading(): void {
    if (this.readPaused) return;
    this.readPaused = true;
    this.stream.pause();
  }

  private maybeResume(): void {
    if (!this.readPaused || this.writeBlocked || this.finished) return;
    if (this.inFlight > streamInFlightMax / 2) return;
    this.readPaused = false;
    this.stream.resume();
  }

  /** Ends the call once nothing is in flight and the client or the server is done. */
  maybeFinish(): void {
    if (this.finished || this.inFlight > 0) return;
    if (this.halfClosed) this.end(this.closing === null ? okTrailers : statusHeaders(this.closing));
    else if (this.service.draining) this.end(statusHeaders(errors.draining));
  }

  /** Reads no more requests; the call ends with `err` once those in flight are answered. */
  private stopReading(err: GrpcError): void {
    if (this.halfClosed) return;
    this.service.logger.debug({ code: err.code, details: err.details }, 'server: stream refused');
    this.halfClosed = true;
    this.closing = err;
  }

  private end(trailers: http2.OutgoingHttpHeaders): void {
    this.finished = true;
    this.service.forget(this);
    if (closed(this.stream)) return;
    this.flush();
    if (!this.stream.headersSent) {
      this.stream.respond({ ...responseHeaders, ...trailers }, { endStream: true });
      return;
    }
    this.trailers = trailers;
    this.stream.end();
  }

  private abandon(): void {
    if (this.finished) return;
    this.finished = true;
    this.service.forget(this);
  }
}
