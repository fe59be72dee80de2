/**
 * Group commit. Requests queue while a batch is being written; when its durable write
 * finishes, everything queued (up to batchRecordsMax records / one batch buffer) becomes the
 * next batch: IDs are reserved in arrival order, records encoded into one reused buffer, one
 * append (one O_DSYNC write), then every request in it is acknowledged.
 *
 * With a standby (a Replicator), each batch is handed to the replicator just before its local
 * write starts (after any rollover, which may still refuse it), so the standby's write and
 * fsync run alongside the local one; from then on a failed local write stops the node (see
 * Wal.append). A batch is acknowledged only when it is durable locally AND the standby's ack
 * covers it. Up to replicationBatchesInFlightMax batches may be written locally and waiting
 * for that ack (pipelining). Requests waiting for the standby past their deadline (or
 * ackWaitMs without one) are answered UNAVAILABLE: never acknowledged without the standby.
 */
import type { Logger } from 'pino';
import { assert, rethrowIfAssertion } from '../core/assert';
import type { Clock, TimerHandle } from '../core/clock';
import {
  DeadlineExceededError,
  NoSpaceError,
  OverloadedError,
  StorageFatalError,
  TallyError,
  UnavailableError,
} from '../core/errors';
import {
  batchRecordsMax,
  replicationBatchesInFlightMax,
  standbyWaitMsDefault,
} from '../core/limits';
import type { Metrics } from '../core/metrics';
import type { CounterState } from '../state/counters';
import {
  allocateRecordBytes,
  encodeAllocate,
  encodeEpochStart,
  recordBytesMax,
} from '../wal/record';
import type { Batch } from '../replication/sender';
import type { Wal } from '../wal/wal';
import type { AllocateCallback, AllocateResult } from './types';
import { planted } from '../core/planted-bugs';

interface Pending {
  namespace: string;
  count: number;
  deadlineUnixMs: number | undefined;
  /** null once answered (an expired wait): the ack then has nobody to tell. */
  cb: AllocateCallback | null;
  first: number;
  /** Set for the epoch-start record (the primary's id); count is 0. */
  epochStartOf?: string;
  /** Epoch start of a forced promotion: every counter goes up by this much (else 0). */
  skipAhead?: number;
  /** Replicated mode: when waiting for the standby turns into UNAVAILABLE. */
  expiresAtUnixMs: number;
}

/** A batch written (or being written) locally and not yet acknowledged to its callers. */
interface InFlight {
  requests: Pending[];
  firstIndex: number;
  lastIndex: number;
  bytes: number;
  localDone: boolean;
  /** When the batch was handed to the standby (monotonic ms). */
  offeredAtMs: number;
}

/** The standby side of a batch, as the committer sees it (replication/sender.ts). */
export interface Replicator {
  offer(batch: Batch): void;
  localDurable(lastIndex: number): void;
  readonly ackedIndex: number;
}

/** How often waiting requests are checked for expiry while a standby is slow or gone. */
const expirySweepMs = 50;

export interface CommitterOptions {
  wal: Wal;
  state: CounterState;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  queuedRequestsMax: number;
  batchBytesMax: number;
  epoch: number;
  /** Called after each durable batch with its last index and bytes (checkpoint trigger). */
  onBatchDurable: (lastIndex: number, bytes: number) => void;
  /** Called once when a write or fsync failed fatally. */
  onFatal: (err: TallyError) => void;
  /** The standby; absent for a standalone node (local fsync alone acknowledges). */
  replicator?: Replicator;
  /** Replicated mode: the longest a request waits for the standby (its deadline may be sooner). */
  ackWaitMs?: number;
}

export class Committer {
  private queue: Pending[] = [];
  private spare: Pending[] = [];
  private writing = false;
  /** A batch start is scheduled (clock.runSoon) and has not run yet. */
  private startScheduled = false;
  private readonly startBound = (): void => {
    this.startScheduled = false;
    if (!this.writing) void this.writeBatches();
  };
  private stopped: TallyError | null = null;
  /** Set by a fatal storage error: nothing is written after it. */
  private fatal: TallyError | null = null;
  private diskFull = false;
  private readonly buf: Buffer;
  private idle: Array<() => void> = [];
  private inflight: InFlight[] = [];
  private windowWaiter: (() => void) | null = null;
  private sweepTimer: TimerHandle | null = null;
  /**
   * Degraded (the controller durably removed the standby from the in-sync set): batches are
   * acknowledged once durable locally; they are still offered to the standby.
   */
  private aloneFlag = false;
  /** Last index acknowledged to its caller (every record up to it is, too). */
  private acknowledged = 0;
  /** The standby's ack as last seen: it only moves forward. */
  private standbyAck = 0;
  /** When the local write now in progress started (monotonic ms), or null. */
  private writeStartedAtMs: number | null = null;

  constructor(private readonly opts: CommitterOptions) {
    this.buf = Buffer.alloc(opts.batchBytesMax);
  }

  private get replicated(): boolean {
    return this.opts.replicator !== undefined;
  }

  /**
   * Queues the epoch-start record (with a forced promotion's skip-ahead, applied to the
   * counters before any request after it reserves IDs); cb is called once it is acknowledged.
   */
  submitEpochStart(nodeId: string, cb: AllocateCallback, skipAhead = 0): void {
    if (this.stopped) return cb(this.stopped);
    this.push({
      namespace: '',
      count: 0,
      deadlineUnixMs: undefined,
      cb,
      first: 0,
      epochStartOf: nodeId,
      skipAhead,
      expiresAtUnixMs: Infinity,
    });
  }

  /** Every record up to this index has been acknowledged to its caller. */
  get acknowledgedIndex(): number {
    return this.acknowledged;
  }

  /**
   * How long the local write in progress has been running (0: none). A hung disk shows here
   * while requests wait behind it; a batch waiting only for the standby does not count.
   */
  writeStallMs(nowMs: number): number {
    return this.writeStartedAtMs === null ? 0 : nowMs - this.writeStartedAtMs;
  }

  /** The standby's ack advanced: acknowledge what it now covers. */
  onAck(): void {
    this.settle();
  }

  get alone(): boolean {
    return this.aloneFlag;
  }

  /**
   * true: only after the controller has durably taken the standby out of the in-sync set —
   * everything durable locally is acknowledged from now on, including batches already
   * waiting for the standby. false: every batch not yet acknowledged waits for the standby
   * again.
   */
  setAlone(alone: boolean): void {
    this.aloneFlag = alone;
    if (alone) this.settle();
  }

  /**
   * Age (ms) of the oldest batch the standby has not acknowledged yet (a batch that waits only
   * for the local fsync does not count: a slow local disk is no reason to drop the standby).
   */
  standbyWaitMs(nowMs: number): number {
    const replicator = this.opts.replicator;
    if (replicator === undefined || this.aloneFlag) return 0;
    const acked = replicator.ackedIndex;
    for (const f of this.inflight) {
      if (f.lastIndex > acked) return nowMs - f.offeredAtMs;
    }
    return 0;
  }

  /** Queues one validated request. Synchronous errors go to cb right away. */
  submit(
    namespace: string,
    count: number,
    deadlineUnixMs: number | undefined,
    cb: AllocateCallback,
  ): void {
    if (this.stopped) return cb(this.stopped);
    if (this.queue.length >= this.opts.queuedRequestsMax) {
      return cb(new OverloadedError(`node: ${this.queue.length} requests queued; retry later`));
    }
    let expiresAtUnixMs = Infinity;
    if (this.replicated) {
      const waitMax = this.opts.clock.nowUnixMs() + (this.opts.ackWaitMs ?? standbyWaitMsDefault);
      expiresAtUnixMs = Math.min(deadlineUnixMs ?? Infinity, waitMax);
    }
    this.push({ namespace, count, deadlineUnixMs, cb, first: 0, expiresAtUnixMs });
  }

  private push(p: Pending): void {
    this.queue.push(p);
    // The first batch after an idle spell starts once this poll's input has been read (the
    // check phase), not on its first request: every request that arrived together (a whole
    // chunk of a stream, other connections' requests) joins it instead of waiting a cycle
    // behind a one-record batch.
    if (!this.writing && !this.startScheduled) {
      this.startScheduled = true;
      this.opts.clock.runSoon(this.startBound);
    }
    if (this.replicated && this.sweepTimer === null) {
      this.sweepTimer = this.opts.clock.setInterval(() => this.expireWaiting(), expirySweepMs);
    }
  }

  /** Refuses new requests with `reason`; queued ones are still written. */
  stop(reason: TallyError): void {
    this.stopped ??= reason;
  }

  /** Takes requests again after stop() (a step-down that did not happen); not after halt(). */
  resume(): void {
    if (this.fatal === null) this.stopped = null;
  }

  /**
   * After a fatal storage error (here or elsewhere in the node): fails every queued request
   * and writes nothing more; a batch in flight fails its leftovers too.
   */
  halt(reason: TallyError): void {
    this.fatal ??= reason;
    this.stop(reason);
    const queued = this.queue;
    this.queue = [];
    for (const p of queued) this.reply(p, reason);
    const inflight = this.inflight;
    this.inflight = [];
    for (const f of inflight) for (const p of f.requests) this.reply(p, reason);
    this.openWindow();
    this.checkIdle();
  }

  /** Resolves when nothing is queued, being written or waiting for the standby. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private isIdle(): boolean {
    return (
      !this.writing && !this.startScheduled && this.queue.length === 0 && this.inflight.length === 0
    );
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    if (this.sweepTimer !== null) {
      this.opts.clock.clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
    const idle = this.idle;
    this.idle = [];
    for (const resolve of idle) resolve();
  }

  private openWindow(): void {
    const waiter = this.windowWaiter;
    this.windowWaiter = null;
    waiter?.();
  }

  /**
   * Answers requests that waited for the standby past their deadline: UNAVAILABLE, and the
   * record (if written) is never acknowledged to anyone — its IDs are skipped, not reissued.
   */
  private expireWaiting(): void {
    const now = this.opts.clock.nowUnixMs();
    const expired = (p: Pending): boolean => p.cb !== null && p.expiresAtUnixMs <= now;
    const err = (): UnavailableError =>
      new UnavailableError(
        'node: the standby did not acknowledge in time; this allocation was not acknowledged',
      );
    for (const f of this.inflight) for (const p of f.requests) if (expired(p)) this.reply(p, err());
    if (this.queue.some(expired)) {
      const keep: Pending[] = [];
      for (const p of this.queue)
        if (expired(p)) this.reply(p, err());
        else keep.push(p);
      this.queue = keep;
    }
  }

  private takeBatch(): Pending[] {
    if (this.queue.length <= batchRecordsMax) {
      const batch = this.queue;
      this.queue = this.spare;
      this.spare = batch;
      return batch;
    }
    return this.queue.splice(0, batchRecordsMax);
  }

  private async writeBatches(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      if (this.inflight.length >= replicationBatchesInFlightMax) {
        await new Promise<void>((resolve) => (this.windowWaiter = resolve));
        if (this.fatal) break;
        continue;
      }
      const batch = this.takeBatch();
      const leftover = await this.writeBatch(batch);
      batch.length = 0;
      if (this.fatal) {
        // Nothing more is written after a fatal storage error: answer, never retry.
        for (const p of leftover) this.reply(p, this.fatal);
        break;
      }
      if (leftover.length > 0) this.queue.unshift(...leftover);
      this.opts.metrics.queuedRequests.set(this.queue.length);
    }
    this.writing = false;
    this.checkIdle();
  }

  /** Every answer goes through here (once): a callback that throws must not stall the batch. */
  private reply(p: Pending, err: TallyError | null, result?: AllocateResult): void {
    const cb = p.cb;
    if (cb === null) return;
    p.cb = null;
    try {
      cb(err, result);
    } catch (thrown) {
      rethrowIfAssertion(thrown);
      this.opts.logger.error({ err: (thrown as Error).message }, 'node: allocate callback threw');
    }
  }

  private async writeBatch(batch: Pending[]): Promise<Pending[]> {
    const { wal, state, clock, epoch } = this.opts;
    const accepted: Pending[] = [];
    const now = clock.nowUnixMs();
    let bytes = 0;
    let i = 0;
    // Fill the current segment before rolling over (Wal decides when a segment is full).
    const room = wal.batchRoomBytes(this.buf.length);
    for (; i < batch.length; i++) {
      const p = batch[i] as Pending;
      const need =
        p.epochStartOf === undefined ? allocateRecordBytes(p.namespace.length) : recordBytesMax;
      if (bytes + need > room) break;
      if (p.cb === null) continue; // expired while queued
      if (p.epochStartOf !== undefined) {
        const index = wal.nextIndex + accepted.length;
        const skip = p.skipAhead ?? 0;
        bytes += encodeEpochStart(this.buf, bytes, epoch, index, p.epochStartOf, skip);
        if (skip > 0) state.skipAhead(skip);
        accepted.push(p);
        continue;
      }
      if (p.deadlineUnixMs !== undefined && p.deadlineUnixMs <= now) {
        this.reply(
          p,
          new DeadlineExceededError('node: deadline passed before the request was written'),
        );
        continue;
      }
      try {
        p.first = state.reserve(p.namespace, p.count);
      } catch (err) {
        rethrowIfAssertion(err);
        this.reply(p, err as TallyError);
        continue;
      }
      const index = wal.nextIndex + accepted.length;
      bytes += encodeAllocate(this.buf, bytes, epoch, index, p.namespace, p.first, p.count);
      accepted.push(p);
    }
    const leftover = i < batch.length ? batch.slice(i) : [];
    if (accepted.length > 0) await this.commit(accepted, bytes);
    return leftover;
  }

  private async commit(accepted: Pending[], bytes: number): Promise<void> {
    const { wal, metrics, replicator } = this.opts;
    const firstIndex = wal.nextIndex;
    const flight: InFlight = {
      requests: accepted,
      firstIndex,
      lastIndex: firstIndex + accepted.length - 1,
      bytes,
      localDone: false,
      offeredAtMs: this.opts.clock.monotonicMs(),
    };
    const started = flight.offeredAtMs;
    const offer = replicator
      ? () => {
          const copy = Buffer.from(this.buf.subarray(0, bytes)); // the buffer is reused
          replicator.offer({ firstIndex, count: accepted.length, bytes: copy });
        }
      : undefined;
    this.inflight.push(flight);
    this.writeStartedAtMs = started;
    try {
      await wal.append(this.buf, bytes, accepted.length, offer);
    } catch (err) {
      rethrowIfAssertion(err); // a bug, not a storage failure
      this.inflight.pop();
      this.commitFailed(accepted, err);
      return;
    } finally {
      this.writeStartedAtMs = null;
    }
    if (this.diskFull) {
      this.diskFull = false;
      metrics.diskFull.set(0);
      this.opts.logger.warn('wal: disk space is back; acknowledging allocations again');
    }
    metrics.fsyncDurationSeconds.observe((this.opts.clock.monotonicMs() - started) / 1000);
    metrics.batchRecords.observe(accepted.length);
    flight.localDone = true;
    replicator?.localDurable(flight.lastIndex);
    this.settle();
  }

  /** Acknowledges, in order, every batch that is durable locally and on the standby. */
  private settle(): void {
    const replicator = this.aloneFlag ? undefined : this.opts.replicator;
    const acked = planted('ack-before-standby-fsync')
      ? Infinity
      : (replicator?.ackedIndex ?? Infinity);
    if (replicator !== undefined) {
      assert(acked >= this.standbyAck, 'committer: the standby ack only moves forward');
      this.standbyAck = acked;
    }
    const { state, epoch } = this.opts;
    while (this.inflight.length > 0) {
      const f = this.inflight[0] as InFlight;
      if (!f.localDone || f.lastIndex > acked) break;
      this.inflight.shift();
      // Acknowledgements go forward through the log, batch after batch, none skipped.
      if (this.acknowledged !== 0 && f.firstIndex !== this.acknowledged + 1) {
        assert(false, `committer: batch ${f.firstIndex} acknowledged after ${this.acknowledged}`);
      }
      this.acknowledged = f.lastIndex;
      for (let k = 0; k < f.requests.length; k++) {
        const p = f.requests[k] as Pending;
        if (p.epochStartOf === undefined) {
          // The moment of acknowledgement: these IDs were never acknowledged before.
          assert(p.first > state.lastId(p.namespace), 'committer: acknowledged IDs are new');
          state.apply(p.namespace, p.first, p.count);
        }
        this.reply(p, null, { first: p.first, count: p.count, epoch, index: f.firstIndex + k });
      }
      this.opts.onBatchDurable(f.lastIndex, f.bytes);
    }
    if (this.inflight.length < replicationBatchesInFlightMax) this.openWindow();
    this.checkIdle();
  }

  private commitFailed(accepted: Pending[], err: unknown): void {
    if (err instanceof NoSpaceError) {
      if (!this.diskFull) {
        // Logged once per episode, not per refused batch.
        this.diskFull = true;
        this.opts.metrics.diskFull.set(1);
        this.opts.logger.error(
          { err: err.message },
          'wal: disk full, refusing allocations until space returns',
        );
      }
      for (const p of accepted) this.reply(p, err);
      return;
    }
    const cause =
      err instanceof TallyError ? err : new StorageFatalError(String(err), { cause: err });
    const failure = new UnavailableError('node: storage failed; this node has stopped', { cause });
    for (const p of accepted) this.reply(p, failure);
    this.halt(failure);
    this.opts.onFatal(cause);
  }
}
