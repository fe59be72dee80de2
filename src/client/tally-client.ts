/**
 * TallyClient: allocate(namespace, count) against a Tally cluster. Requests are pipelined on
 * one AllocateStream to the node the client takes for the primary (correlation ids; responses
 * in any order); failures are retried on the right node until the caller's deadline:
 *
 * - FAILED_PRECONDITION with the primary's address (a standby): sent there at once — unless
 *   it names a node whose stream broke less than lostHintIgnoreMs ago (the standby has not
 *   been promoted yet): then the standby is asked again after a short backoff (≤ 100 ms).
 * - FAILED_PRECONDITION without one (a deposed primary, a standby that does not know): the
 *   next configured address, at once. Both count as hops: after clientHintHopsMax of them a
 *   request backs off, so two nodes naming each other cannot make a busy loop.
 * - UNAVAILABLE, or the stream lost (connection refused or dropped, node draining): the next
 *   address, after a full-jitter backoff (backoff.ts).
 * - RESOURCE_EXHAUSTED (overload, disk full): the same node, after a backoff.
 * - anything else (INVALID_ARGUMENT, OUT_OF_RANGE, DATA_LOSS, …): rejected at once, never
 *   retried.
 *
 * Retrying is safe because an allocation that fails is never acknowledged: its IDs, if the
 * node reserved them, are skipped (a gap), and the retry gets new ones. No ID repeats.
 *
 * Per request: one small state object, one promise, one message; no Map or Set entries, no timer; no
 * logging. Bounds: clientPendingRequestsMax requests held (more are refused at once with
 * ClientOverloadedError), clientStreamInFlightMax written on the stream (the rest wait here).
 */
import type * as grpc from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { type Clock, systemClock, type TimerHandle } from '../core/clock';
import {
  clientDeadlineMsDefault,
  clientHintHopsMax,
  clientPendingRequestsMax,
  clientStreamInFlightMax,
  countMax,
} from '../core/limits';
import { statusName } from '../core/wire';
import { type BackoffOptions, defaultBackoff, retryDelayMs } from './backoff';
import {
  ClientAbortedError,
  ClientClosedError,
  ClientDeadlineExceededError,
  ClientOverloadedError,
  ClientRequestError,
  type StatusSummary,
} from './errors';
import { Deadlines } from './deadlines';
import { Fifo } from './fifo';
import { GrpcTransport } from './grpc-transport';
import { Http2Transport } from './http2-transport';
import { PrimaryFinder, type PrimaryResolver } from './primary-finder';
import { RequestStream, type RequestStreamOwner } from './request-stream';
import type { AllocateTransport, StreamEnd, WireResponse } from './transport';

/** IDs first .. first+count-1, durable on the primary (and its in-sync standby). */
export interface Allocation {
  first: number;
  count: number;
  /** The epoch and WAL index of the record that made the allocation durable. */
  epoch: number;
  index: number;
}

export interface AllocateOptions {
  /** Give up this many ms after the call, retries included. Default: the client's deadlineMs. */
  deadlineMs?: number;
  /** Aborting rejects the call with ClientAbortedError (an attempt already sent may still
   *  allocate IDs on the node: they are skipped, never handed to anyone). */
  signal?: AbortSignal;
}

export interface TallyClientOptions {
  /** Node addresses (host:port), tried in this order. May be empty with resolvePrimary. */
  addresses: readonly string[];
  /** Primary discovery beyond the address list (see PrimaryResolver). */
  resolvePrimary?: PrimaryResolver;
  /** Default deadline of allocate(), retries included (clientDeadlineMsDefault = 10 s). */
  deadlineMs?: number;
  /** Allocations held at once before allocate() refuses (clientPendingRequestsMax). */
  pendingRequestsMax?: number;
  /** Requests written on the stream and unanswered (clientStreamInFlightMax). */
  streamInFlightMax?: number;
  /** Retry pacing (backoff.ts); `random` is a seam for tests. */
  backoff?: Partial<BackoffOptions>;
  /**
   * gRPC channel credentials (TLS) and channel options. Either one makes the client use grpc-js
   * (GrpcTransport); without them it speaks plaintext gRPC over node:http2 (Http2Transport),
   * which costs a fraction of grpc-js's CPU per allocation.
   */
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  /**
   * Seams for tests and the simulator: the network, and the clock that deadlines are measured
   * on and retries and deadlines are timed by (the jitter's Random is backoff.random).
   */
  transport?: AllocateTransport;
  clock?: Clock;
}

/**
 * The backoff cap while a standby names a primary this client just lost: its promotion is
 * expected any moment, and is noticed within this.
 */
const promotionWaitBackoffMaxMs = 100;

/** The largest delay setTimeout takes; a longer deadline would fire at once. */
const timerMsMax = 2 ** 31 - 1;

type Phase = 'queued' | 'sent' | 'backoff' | 'done';

/** One allocate() call, across all its attempts. */
class PendingAllocation {
  phase: Phase = 'queued';
  get settled(): boolean {
    return this.phase === 'done';
  }
  attempts = 0;
  retries = 0;
  hops = 0;
  correlationId = 0;
  stream: RequestStream<PendingAllocation> | null = null;
  retryTimer: TimerHandle | undefined;
  lastStatus: StatusSummary | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Neighbours in the client's list of pending calls (PendingList). */
  prev: PendingAllocation | null = null;
  next: PendingAllocation | null = null;

  constructor(
    readonly namespace: string,
    readonly count: number,
    readonly deadlineMs: number,
    readonly deadlineAtMs: number,
    readonly resolve: (a: Allocation) => void,
    readonly reject: (err: Error) => void,
  ) {}
}

/**
 * The calls not yet settled, as a doubly linked list through the calls themselves: adding and
 * removing allocate nothing (a Set that takes and drops an entry per call keeps rehashing, and
 * its promoted old tables keep the calls alive through young-generation GCs: see
 * correlation-table.ts).
 */
class PendingList {
  private head: PendingAllocation | null = null;
  size = 0;

  add(req: PendingAllocation): void {
    req.prev = null;
    req.next = this.head;
    if (this.head !== null) this.head.prev = req;
    this.head = req;
    this.size++;
  }

  /** Removes req, which must be in the list. */
  delete(req: PendingAllocation): void {
    if (req.prev !== null) req.prev.next = req.next;
    else this.head = req.next;
    if (req.next !== null) req.next.prev = req.prev;
    req.prev = null;
    req.next = null;
    this.size--;
  }

  toArray(): PendingAllocation[] {
    const all: PendingAllocation[] = [];
    for (let r = this.head; r !== null; r = r.next) all.push(r);
    return all.reverse(); // oldest first
  }
}

/** What to do with a failed attempt, by status code. */
type Reaction = 'redirect' | 'next-node' | 'same-node' | 'final';

function reaction(code: number, streamWide: boolean): Reaction {
  switch (code) {
    case GrpcStatus.FAILED_PRECONDITION:
      return 'redirect';
    case GrpcStatus.UNAVAILABLE:
      return 'next-node';
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return 'same-node';
    case GrpcStatus.CANCELLED:
    case GrpcStatus.UNKNOWN:
    case GrpcStatus.INTERNAL:
      // A whole call that ends like this is a broken connection (RST_STREAM, a proxy), not an
      // answer about the request; as a per-request answer it is a server fault: not retried.
      return streamWide ? 'next-node' : 'final';
    default:
      return 'final';
  }
}

export class TallyClient {
  private readonly finder: PrimaryFinder;
  private readonly transport: AllocateTransport;
  private readonly clock: Clock;
  private readonly backoff: BackoffOptions;
  private readonly deadlineMs: number;
  private readonly pendingMax: number;
  private readonly inFlightMax: number;
  private readonly queue = new Fifo<PendingAllocation>();
  private readonly pending = new PendingList();
  private readonly streams = new Map<string, RequestStream<PendingAllocation>>();
  private nextCorrelationId = 1;
  private closed = false;
  private readonly deadlines: Deadlines<PendingAllocation>;
  private readonly streamOwner: RequestStreamOwner<PendingAllocation> = {
    answered: (stream, req, res) => this.answered(stream, req, res),
    ended: (stream, end, unanswered) => this.ended(stream, end, unanswered),
  };

  constructor(opts: TallyClientOptions) {
    if (opts.addresses.length === 0 && opts.resolvePrimary === undefined) {
      throw new TypeError('client: give at least one node address or a resolvePrimary');
    }
    this.deadlineMs = checkDeadlineMs(opts.deadlineMs ?? clientDeadlineMsDefault);
    this.pendingMax = checkBound(
      'pendingRequestsMax',
      opts.pendingRequestsMax,
      clientPendingRequestsMax,
    );
    this.inFlightMax = checkBound(
      'streamInFlightMax',
      opts.streamInFlightMax,
      clientStreamInFlightMax,
    );
    this.backoff = { ...defaultBackoff, ...opts.backoff };
    this.clock = opts.clock ?? systemClock;
    this.deadlines = new Deadlines<PendingAllocation>(
      this.clock,
      (req) => this.onDeadline(req),
      () => this.pending.size,
    );
    this.transport = opts.transport ?? defaultTransport(opts);
    this.finder = new PrimaryFinder(opts.addresses, opts.resolvePrimary, () => this.pump());
  }

  /** The address requests go to now: the primary as far as the client knows. */
  get target(): string | undefined {
    return this.finder.target;
  }

  /**
   * Allocates `count` consecutive IDs (1..countMax) in `namespace`. Resolves once they are
   * durable; rejects with a ClientError (see errors.ts) that says why.
   */
  allocate(namespace: string, count = 1, opts: AllocateOptions = {}): Promise<Allocation> {
    const refusal = this.refusal(count, opts);
    if (refusal !== null) return Promise.reject(refusal);
    const deadlineMs = opts.deadlineMs === undefined ? this.deadlineMs : opts.deadlineMs;
    return new Promise<Allocation>((resolve, reject) => {
      const deadlineAtMs = this.clock.monotonicMs() + deadlineMs;
      const req = new PendingAllocation(
        namespace,
        count,
        deadlineMs,
        deadlineAtMs,
        resolve,
        reject,
      );
      this.pending.add(req);
      this.deadlines.add(req, deadlineMs);
      if (opts.signal !== undefined) this.watchSignal(req, opts.signal);
      this.enqueue(req);
    });
  }

  /** Rejects every pending call with ClientClosedError and releases every connection. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.finder.close();
    for (const req of this.pending.toArray())
      this.fail(req, new ClientClosedError('client: closed'));
    this.queue.drain();
    for (const stream of this.streams.values()) stream.cancel();
    this.streams.clear();
    this.transport.close();
  }

  /** One response on `stream`. */
  private answered(
    stream: RequestStream<PendingAllocation>,
    req: PendingAllocation,
    res: WireResponse,
  ): void {
    req.stream = null;
    if (res.error === null) this.succeed(req, res);
    else {
      const { code, message, primaryAddress } = res.error;
      this.attemptFailed(req, stream.address, { code, details: message }, primaryAddress, false);
    }
    this.pump();
    this.retireIfIdle(stream);
  }

  /** `stream` ended; every request in `unanswered` failed with its status. */
  private ended(
    stream: RequestStream<PendingAllocation>,
    end: StreamEnd,
    unanswered: PendingAllocation[],
  ): void {
    if (this.streams.get(stream.address) === stream) this.streams.delete(stream.address);
    const status: StatusSummary =
      end.code === GrpcStatus.OK
        ? { code: GrpcStatus.UNAVAILABLE, details: 'client: stream ended with requests unanswered' }
        : { code: end.code, details: end.details };
    const hint = end.primaryAddress ?? '';
    for (const req of unanswered) {
      req.stream = null;
      this.attemptFailed(req, stream.address, status, hint, true);
    }
    this.pump();
  }

  private refusal(count: number, opts: AllocateOptions): Error | null {
    if (this.closed) return new ClientClosedError('client: closed');
    if (!Number.isInteger(count) || count < 1 || count > countMax) {
      const details = `client: count must be an integer from 1 to ${countMax}, got ${count}`;
      return new ClientRequestError(GrpcStatus.INVALID_ARGUMENT, details, details);
    }
    if (opts.deadlineMs !== undefined && !validDeadlineMs(opts.deadlineMs)) {
      return new RangeError(deadlineMsMessage);
    }
    if (opts.signal?.aborted === true) {
      return new ClientAbortedError('client: allocate aborted', { cause: opts.signal.reason });
    }
    if (this.pending.size >= this.pendingMax) {
      return new ClientOverloadedError(
        `client: ${this.pending.size} allocations already pending (pendingRequestsMax); retry later`,
      );
    }
    return null;
  }

  private watchSignal(req: PendingAllocation, signal: AbortSignal): void {
    req.signal = signal;
    req.onAbort = () =>
      this.fail(req, new ClientAbortedError('client: allocate aborted', { cause: signal.reason }));
    signal.addEventListener('abort', req.onAbort, { once: true });
  }

  private enqueue(req: PendingAllocation): void {
    req.phase = 'queued';
    this.queue.push(req);
    this.pump();
  }

  /** Writes queued requests on the target's stream while it has room. */
  private pump(): void {
    if (this.closed || this.queue.length === 0) return;
    const target = this.finder.target;
    if (target === undefined) return this.finder.refresh();
    let stream = this.streams.get(target);
    while (this.queue.length > 0) {
      if (stream === undefined || stream.ended) stream = this.openStream(target);
      if (stream.inFlight >= this.inFlightMax) return;
      const req = this.queue.shift() as PendingAllocation;
      if (req.phase !== 'queued') continue; // settled while it waited here
      req.phase = 'sent';
      req.stream = stream;
      req.correlationId = this.nextCorrelationId++;
      req.attempts++;
      stream.send(req, req.correlationId);
    }
  }

  private openStream(address: string): RequestStream<PendingAllocation> {
    const stream = new RequestStream(address, this.transport, this.streamOwner);
    this.streams.set(address, stream);
    return stream;
  }

  /** A stream to a node that is no longer the target is ended once nothing waits on it. */
  private retireIfIdle(stream: RequestStream<PendingAllocation>): void {
    if (stream.inFlight > 0 || stream.address === this.finder.target) return;
    if (this.streams.get(stream.address) === stream) this.streams.delete(stream.address);
    stream.end();
  }

  private succeed(req: PendingAllocation, res: WireResponse): void {
    if (res.count !== req.count || !Number.isSafeInteger(res.first) || res.first < 1) {
      // The node broke the protocol; handing these IDs out could hand out wrong ones.
      const details = `client: node answered first=${res.first} count=${res.count} to a request for ${req.count}`;
      return this.fail(req, new ClientRequestError(GrpcStatus.INTERNAL, details, details));
    }
    this.settle(req);
    req.resolve({ first: res.first, count: res.count, epoch: res.epoch, index: res.index });
  }

  private attemptFailed(
    req: PendingAllocation,
    from: string,
    status: StatusSummary,
    hint: string,
    streamWide: boolean,
  ): void {
    if (req.phase === 'done') return;
    req.lastStatus = status;
    switch (reaction(status.code, streamWide)) {
      case 'redirect':
        if (hint === '') this.finder.failed(from, this.clock.monotonicMs());
        else if (!this.finder.redirect(from, hint, this.clock.monotonicMs())) {
          // It names a node whose stream just broke: it is about to be promoted, ask it again.
          return this.retryLater(req, promotionWaitBackoffMaxMs);
        }
        if (++req.hops <= clientHintHopsMax) return this.enqueue(req);
        return this.retryLater(req);
      case 'next-node':
        if (streamWide) this.finder.lost(from, this.clock.monotonicMs());
        else this.finder.failed(from, this.clock.monotonicMs());
        return this.retryLater(req);
      case 'same-node':
        return this.retryLater(req);
      case 'final':
        return this.fail(req, finalError(req, status));
    }
  }

  /** Backs off before the next attempt; `capMs` lowers the backoff's cap (never raises it). */
  private retryLater(req: PendingAllocation, capMs?: number): void {
    const remainingMs = req.deadlineAtMs - this.clock.monotonicMs();
    const backoff =
      capMs === undefined
        ? this.backoff
        : { ...this.backoff, maxMs: Math.min(capMs, this.backoff.maxMs) };
    const delayMs = retryDelayMs(req.retries, remainingMs, backoff);
    if (delayMs === null) return this.fail(req, deadlineError(req, 'gave up before'));
    req.retries++;
    req.phase = 'backoff';
    // A closure per retry (never per call): the clock's timers take no arguments.
    req.retryTimer = this.clock.setTimeout(() => this.onRetry(req), delayMs);
  }

  private onRetry(req: PendingAllocation): void {
    req.retryTimer = undefined;
    if (req.phase === 'backoff') this.enqueue(req);
  }

  private onDeadline(req: PendingAllocation): void {
    this.fail(req, deadlineError(req, 'reached'));
  }

  /** Rejects req wherever it is: waiting here, on a stream, or backing off. */
  private fail(req: PendingAllocation, err: Error): void {
    if (req.phase === 'done') return;
    const stream = req.stream;
    this.settle(req);
    req.reject(err);
    if (stream !== null) {
      stream.forget(req.correlationId);
      this.pump();
      this.retireIfIdle(stream);
    }
  }

  private settle(req: PendingAllocation): void {
    req.phase = 'done';
    req.stream = null;
    this.pending.delete(req);
    this.deadlines.settled(req.deadlineMs);
    if (req.retryTimer !== undefined) this.clock.clearTimeout(req.retryTimer);
    if (req.onAbort !== undefined) req.signal?.removeEventListener('abort', req.onAbort);
  }
}

function defaultTransport(opts: TallyClientOptions): AllocateTransport {
  if (opts.credentials === undefined && opts.channelOptions === undefined) {
    return new Http2Transport();
  }
  return new GrpcTransport({ credentials: opts.credentials, channelOptions: opts.channelOptions });
}

const deadlineMsMessage = `client: deadlineMs must be a number of ms in (0, ${timerMsMax}]`;

function validDeadlineMs(ms: number): boolean {
  return typeof ms === 'number' && ms > 0 && ms <= timerMsMax;
}

function checkDeadlineMs(ms: number): number {
  if (!validDeadlineMs(ms)) throw new RangeError(deadlineMsMessage);
  return ms;
}

function checkBound(name: string, value: number | undefined, max: number): number {
  if (value === undefined) return max;
  if (!(Number.isInteger(value) && value >= 1 && value <= max)) {
    throw new RangeError(`client: ${name} must be an integer from 1 to ${max}`);
  }
  return value;
}

function finalError(req: PendingAllocation, status: StatusSummary): ClientRequestError {
  const what = `client: allocate ${req.count} in "${req.namespace}"`;
  return new ClientRequestError(
    status.code,
    status.details,
    `${what} failed: ${statusName(status.code)}: ${status.details}`,
  );
}

function deadlineError(req: PendingAllocation, how: string): ClientDeadlineExceededError {
  const last =
    req.lastStatus === undefined
      ? 'no attempt was answered'
      : `last: ${statusName(req.lastStatus.code)}: ${req.lastStatus.details}`;
  return new ClientDeadlineExceededError(
    `client: allocate ${req.count} in "${req.namespace}" ${how} its deadline of ${req.deadlineMs} ms after ${req.attempts} attempt(s); ${last}`,
    req.attempts,
    req.lastStatus,
  );
}
