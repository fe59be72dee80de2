/**
 * tally.v1.Counter: unary Allocate and pipelined AllocateStream. This is the hot path: no
 * info-level logging, no sync I/O, and per request nothing beyond the node callback and the
 * response object. Range and namespace checks live in the node (InvalidArgumentError); the
 * handlers only make sure the fields have the right types before passing them on.
 */
import {
  type ServerDuplexStream,
  type ServerUnaryCall,
  type MethodDefinition,
  type ServiceDefinition,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { receiveMessageBytesMax, streamInFlightMax, streamPendingWritesMax } from '../core/limits';
import type { Metrics } from '../core/metrics';
import type { AllocateCallback, AllocateResult, CounterNode } from '../node/types';
import type { TallyError } from '../core/errors';
import type { AllocateRequest__Output } from '../generated/tally/v1/AllocateRequest';
import type { AllocateResponse } from '../generated/tally/v1/AllocateResponse';
import type { CounterHandlers } from '../generated/tally/v1/Counter';
import { type GrpcError, statusName, toGrpcError } from './status';

export const drainingMessage = 'server: draining, retry on another node';

type UnaryCall = ServerUnaryCall<AllocateRequest__Output, AllocateResponse>;
type DuplexCall = ServerDuplexStream<AllocateRequest__Output, AllocateResponse>;

export interface CounterServiceOptions {
  node: CounterNode;
  logger: Logger;
  metrics: Metrics;
}

/** grpc-js reports "no deadline" as Infinity; the node wants undefined. */
function deadlineUnixMs(call: { getDeadline(): Date | number }): number | undefined {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? ms : undefined;
}

/** Stands in for a request whose bytes are not a valid AllocateRequest (see tolerantRequests). */
const undecodable = Object.freeze({}) as AllocateRequest__Output;
/** Stands in for a request above receiveMessageBytesMax (the server's own limit is higher). */
const oversized = Object.freeze({}) as AllocateRequest__Output;

/**
 * The Counter service definition with request decoding that cannot fail: bytes that are not a
 * valid AllocateRequest reach the handler as `undecodable` and get INVALID_ARGUMENT (grpc-js
 * would answer INTERNAL, and on a stream end the whole call).
 */
export function tolerantRequests(definition: ServiceDefinition): ServiceDefinition {
  const tolerant = (
    method: MethodDefinition<unknown, unknown>,
  ): MethodDefinition<unknown, unknown> => ({
    ...method,
    requestDeserialize: (bytes: Buffer) => {
      if (bytes.length > receiveMessageBytesMax) return oversized;
      try {
        return method.requestDeserialize(bytes);
      } catch {
        return undecodable;
      }
    },
  });
  return Object.fromEntries(Object.entries(definition).map(([name, m]) => [name, tolerant(m)]));
}

/** Only the field types: everything about values is the node's to judge. */
function malformed(req: AllocateRequest__Output): GrpcError | null {
  if (req === oversized) {
    return {
      code: GrpcStatus.RESOURCE_EXHAUSTED,
      details: `server: request larger than ${receiveMessageBytesMax} bytes`,
    };
  }
  if (req === undecodable) {
    return {
      code: GrpcStatus.INVALID_ARGUMENT,
      details: 'server: request is not a valid tally.v1.AllocateRequest',
    };
  }
  if (typeof req.namespace === 'string' && typeof req.count === 'number') return null;
  return { code: GrpcStatus.INVALID_ARGUMENT, details: 'server: namespace and count are required' };
}

/** Per-method metric children, resolved once so the hot path does no label lookups. */
export class MethodMetrics {
  private readonly ok;
  private readonly duration;
  constructor(
    private readonly metrics: Metrics,
    private readonly method: string,
  ) {
    this.ok = metrics.requests.labels(method, 'OK');
    this.duration = metrics.requestDurationSeconds.labels(method);
  }

  succeeded(startMs: number, count: number): void {
    this.ok.inc();
    this.metrics.idsAllocated.inc(count);
    this.duration.observe((performance.now() - startMs) / 1000);
  }

  failed(startMs: number, code: number): void {
    this.metrics.requests.labels(this.method, statusName(code)).inc();
    this.duration.observe((performance.now() - startMs) / 1000);
  }
}

function okResponse(result: AllocateResult, correlationId: string): AllocateResponse {
  return {
    first: result.first,
    count: result.count,
    correlationId,
    epoch: result.epoch,
    index: result.index,
  };
}

export class CounterService {
  readonly handlers: CounterHandlers;
  readonly node: CounterNode;
  readonly logger: Logger;
  readonly unaryMetrics: MethodMetrics;
  readonly streamMetrics: MethodMetrics;
  private readonly streams = new Set<AllocationStream>();
  private drainingFlag = false;

  constructor(opts: CounterServiceOptions) {
    this.node = opts.node;
    this.logger = opts.logger;
    this.unaryMetrics = new MethodMetrics(opts.metrics, 'Allocate');
    this.streamMetrics = new MethodMetrics(opts.metrics, 'AllocateStream');
    this.handlers = {
      Allocate: (call, callback) => this.allocate(call, callback),
      AllocateStream: (call) => this.openStream(call),
    };
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

  private allocate(call: UnaryCall, callback: sendUnaryData<AllocateResponse>): void {
    const startMs = performance.now();
    const bad = malformed(call.request);
    if (bad !== null) {
      this.unaryMetrics.failed(startMs, bad.code);
      callback(bad);
      return;
    }
    const req = call.request;
    this.node.allocate(req.namespace, req.count, deadlineUnixMs(call), (err, result) => {
      if (call.cancelled) {
        // The client is gone or grpc-js already sent DEADLINE_EXCEEDED: nobody to answer.
        this.unaryMetrics.failed(startMs, GrpcStatus.CANCELLED);
      } else if (err === null && result !== undefined) {
        this.unaryMetrics.succeeded(startMs, result.count);
        callback(null, okResponse(result, '0'));
      } else {
        const status = toGrpcError(err, this.logger);
        this.unaryMetrics.failed(startMs, status.code);
        callback(status);
      }
    });
  }

  private openStream(call: DuplexCall): void {
    this.streams.add(new AllocationStream(call, this));
  }
}

/**
 * One AllocateStream call. Every request read is handed to the node and answered exactly
 * once, in completion order, unless the call ended first (then the result is dropped: the
 * IDs stay allocated but unacknowledged, which the invariants allow).
 */
class AllocationStream {
  private inFlight = 0;
  private readPaused = false;
  private writeBlocked = false;
  private halfClosed = false;
  /** Set once the call is ended by us or cancelled by the peer: never write again. */
  private finished = false;
  private readonly deadlineUnixMs: number | undefined;

  constructor(
    private readonly call: DuplexCall,
    private readonly service: CounterService,
  ) {
    this.deadlineUnixMs = deadlineUnixMs(call);
    call.on('data', (req: AllocateRequest__Output) => this.onRequest(req));
    call.on('end', () => {
      this.halfClosed = true;
      this.maybeFinish();
    });
    call.on('cancelled', () => this.abandon());
    call.on('close', () => this.abandon());
    // Errors after cancellation (writes racing a reset) carry nothing to act on.
    call.on('error', () => this.abandon());
  }

  private onRequest(req: AllocateRequest__Output): void {
    if (this.finished) return;
    const startMs = performance.now();
    const correlationId = req.correlationId;
    const bad = this.service.draining
      ? { code: GrpcStatus.UNAVAILABLE, details: drainingMessage }
      : malformed(req);
    if (bad !== null) {
      this.answerError(startMs, correlationId, bad);
      return;
    }
    this.inFlight++;
    if (this.inFlight >= streamInFlightMax) this.pauseReading();
    const done: AllocateCallback = (err, result) =>
      this.onResult(startMs, correlationId, err, result);
    this.service.node.allocate(req.namespace, req.count, this.deadlineUnixMs, done);
  }

  private onResult(
    startMs: number,
    correlationId: string,
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
      this.write(okResponse(result, correlationId));
    } else {
      this.answerError(startMs, correlationId, toGrpcError(err, this.service.logger));
    }
    this.maybeResume();
    this.maybeFinish();
  }

  private answerError(startMs: number, correlationId: string, status: GrpcError): void {
    this.service.streamMetrics.failed(startMs, status.code);
    this.write({
      correlationId,
      error: {
        code: status.code,
        message: status.details,
        primaryAddress: status.primaryAddress ?? '',
      },
    });
  }

  private write(response: AllocateResponse): void {
    this.call.write(response);
    if (!this.writeBlocked && this.call.writableLength >= streamPendingWritesMax) {
      // write() has returned false by now (the buffer is far above its high-water mark), so
      // 'drain' will come once grpc-js has flushed to the socket.
      this.writeBlocked = true;
      this.pauseReading();
      this.call.once('drain', () => {
        this.writeBlocked = false;
        this.maybeResume();
      });
    }
  }

  private pauseReading(): void {
    if (this.readPaused) return;
    this.readPaused = true;
    this.call.pause();
  }

  private maybeResume(): void {
    if (!this.readPaused || this.writeBlocked || this.finished) return;
    if (this.inFlight > streamInFlightMax / 2) return;
    this.readPaused = false;
    this.call.resume();
  }

  /** Ends the call once nothing is in flight and the client or the server is done. */
  maybeFinish(): void {
    if (this.finished || this.inFlight > 0) return;
    if (this.halfClosed) {
      this.finished = true;
      this.service.forget(this);
      this.call.end();
    } else if (this.service.draining) {
      this.finished = true;
      this.service.forget(this);
      // grpc-js turns an 'error' event on a server stream into the call's final status.
      this.call.emit('error', { code: GrpcStatus.UNAVAILABLE, details: drainingMessage });
    }
  }

  private abandon(): void {
    if (this.finished) return;
    this.finished = true;
    this.service.forget(this);
  }
}
