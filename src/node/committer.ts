/**
 * Group commit. Requests queue while a batch is being written; when the write+fdatasync
 * finishes, everything queued (up to batchRecordsMax records / one batch buffer) becomes the
 * next batch: IDs are reserved in arrival order, records encoded into one reused buffer, one
 * append (write + fdatasync), then every request in it is acknowledged.
 */
import type { Logger } from 'pino';
import type { Clock } from '../core/clock';
import {
  DeadlineExceededError,
  NoSpaceError,
  OverloadedError,
  StorageFatalError,
  TallyError,
  UnavailableError,
} from '../core/errors';
import { batchRecordsMax } from '../core/limits';
import type { Metrics } from '../core/metrics';
import type { CounterState } from '../state/counters';
import { allocateRecordBytes, encodeAllocate } from '../wal/record';
import type { Wal } from '../wal/wal';
import type { AllocateCallback, AllocateResult } from './types';

interface Pending {
  namespace: string;
  count: number;
  deadlineUnixMs: number | undefined;
  cb: AllocateCallback;
  first: number;
}

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
}

export class Committer {
  private queue: Pending[] = [];
  private spare: Pending[] = [];
  private writing = false;
  private stopped: TallyError | null = null;
  /** Set by a fatal storage error: nothing is written after it. */
  private fatal: TallyError | null = null;
  private diskFull = false;
  private readonly buf: Buffer;
  private idle: Array<() => void> = [];

  constructor(private readonly opts: CommitterOptions) {
    this.buf = Buffer.alloc(opts.batchBytesMax);
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
    this.queue.push({ namespace, count, deadlineUnixMs, cb, first: 0 });
    if (!this.writing) void this.writeBatches();
  }

  /** Refuses new requests with `reason`; queued ones are still written. */
  stop(reason: TallyError): void {
    this.stopped ??= reason;
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
  }

  /** Resolves when nothing is queued or being written. */
  whenIdle(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
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
    const idle = this.idle;
    this.idle = [];
    for (const resolve of idle) resolve();
  }

  /** Every answer goes through here: a callback that throws must not stall the batch. */
  private reply(p: Pending, err: TallyError | null, result?: AllocateResult): void {
    try {
      p.cb(err, result);
    } catch (thrown) {
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
      if (bytes + allocateRecordBytes(p.namespace.length) > room) break;
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
    const { wal, state, metrics, epoch } = this.opts;
    const firstIndex = wal.nextIndex;
    const started = this.opts.clock.monotonicMs();
    try {
      await wal.append(this.buf, bytes, accepted.length);
    } catch (err) {
      this.commitFailed(accepted, err);
      return;
    }
    if (this.diskFull) {
      this.diskFull = false;
      metrics.diskFull.set(0);
      this.opts.logger.warn('wal: disk space is back; acknowledging allocations again');
    }
    metrics.fsyncDurationSeconds.observe((this.opts.clock.monotonicMs() - started) / 1000);
    metrics.batchRecords.observe(accepted.length);
    for (let k = 0; k < accepted.length; k++) {
      const p = accepted[k] as Pending;
      state.apply(p.namespace, p.first, p.count);
      this.reply(p, null, { first: p.first, count: p.count, epoch, index: firstIndex + k });
    }
    this.opts.onBatchDurable(firstIndex + accepted.length - 1, bytes);
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
