/**
 * IdBlockAllocator: IDs from memory. It allocates blocks of consecutive IDs with one request
 * each and hands them out one by one, so an application takes most IDs without a round trip.
 *
 * - Double buffer: a current block and a spare. When the current block falls below
 *   refillFraction of a block, the spare is fetched in the background; when the current runs
 *   out, the spare takes over at once. At most one refill is in flight.
 * - Adaptive size: at each refill the consumption rate since the last refill is measured
 *   (smoothed), and the block is sized to last about blockTargetMs at that rate, within
 *   [blockSizeMin, blockSizeMax]; a refill with callers waiting asks for at least one ID each.
 * - Callers of next() that find memory empty wait in order (FIFO) and get increasing IDs.
 *   A failed refill rejects every waiter with its error; the next call starts a new one. A
 *   failed background prefetch rejects nobody: the next refill happens when the block runs out.
 *
 * Gaps: IDs still in memory at close() (or when the process exits) are never handed out by
 * anyone. Order: the IDs one allocator hands out increase in the order it hands them out; two
 * allocators (processes) each hold blocks, so their IDs interleave, not in real-time order.
 */
import { type Clock, systemClock } from '../core/clock';
import { assert } from '../core/assert';
import { blockSizeMax, blockWaitersMax } from '../core/limits';
import { ClientClosedError, ClientOverloadedError } from './errors';
import { Fifo } from './fifo';
import type { AllocateOptions, Allocation } from './tally-client';

/** Where blocks come from: a TallyClient, or anything with its allocate(). */
export interface BlockSource {
  allocate(namespace: string, count: number, opts?: AllocateOptions): Promise<Allocation>;
}

export interface IdBlockAllocatorOptions {
  /** Smallest block asked for (default blockSizeMinDefault = 16). */
  blockSizeMin?: number;
  /** Largest block asked for (default and upper bound: blockSizeMax = 10 000). */
  blockSizeMax?: number;
  /** The first block's size (default: blockSizeMin). */
  blockSizeInitial?: number;
  /** How long a block should last at the measured rate (default blockTargetMsDefault = 1 s). */
  blockTargetMs?: number;
  /** Deadline of each refill's allocate() (default: the source's own). */
  deadlineMs?: number;
  /** Seam for tests: the clock the rate is measured on. */
  clock?: Clock;
}

export const blockSizeMinDefault = 16;
export const blockTargetMsDefault = 1000;
/** Prefetch the spare once the current block holds less than this fraction of a block. */
export const refillFraction = 0.5;
/** Weight of the newest rate sample (exponential smoothing). */
const rateSmoothing = 0.5;

interface Waiter {
  resolve: (id: number) => void;
  reject: (err: unknown) => void;
}

export class IdBlockAllocator {
  /** The current block: IDs cur .. curEnd-1 are still to be handed out. */
  private cur = 0;
  private curEnd = 0;
  /** The spare block (empty when spareFirst === spareEnd). */
  private spareFirst = 0;
  private spareEnd = 0;
  private refilling = false;
  /** A background prefetch failed: wait for the current block to run out before the next. */
  private prefetchPaused = false;
  private closed = false;
  private readonly waiters = new Fifo<Waiter>();
  private readonly sizeMin: number;
  private readonly sizeMax: number;
  private readonly targetMs: number;
  private readonly clock: Clock;
  private readonly refillOptions: AllocateOptions;
  private size: number;
  private rateIdsPerMs: number | undefined;
  private measuredFromMs: number | undefined;
  private takenSinceMeasure = 0;

  constructor(
    private readonly source: BlockSource,
    readonly namespace: string,
    opts: IdBlockAllocatorOptions = {},
  ) {
    this.sizeMin = opts.blockSizeMin ?? blockSizeMinDefault;
    this.sizeMax = opts.blockSizeMax ?? blockSizeMax;
    this.size = opts.blockSizeInitial ?? this.sizeMin;
    this.targetMs = opts.blockTargetMs ?? blockTargetMsDefault;
    checkOptions(this.sizeMin, this.sizeMax, this.size, this.targetMs);
    this.clock = opts.clock ?? systemClock;
    this.refillOptions = opts.deadlineMs === undefined ? {} : { deadlineMs: opts.deadlineMs };
  }

  /** The size the next refill asks for, before it measures the rate again. */
  get blockSize(): number {
    return this.size;
  }

  /** IDs in memory: what is left of the current block plus the spare. */
  get available(): number {
    return this.curEnd - this.cur + (this.spareEnd - this.spareFirst);
  }

  /** The next ID: from memory when there is one, else after a refill (callers in order). */
  next(): Promise<number> {
    const id = this.tryNext();
    if (id !== undefined) return Promise.resolve(id);
    if (this.closed) return Promise.reject(new ClientClosedError('client: block allocator closed'));
    if (this.waiters.length >= blockWaitersMax) {
      return Promise.reject(
        new ClientOverloadedError(`client: ${blockWaitersMax} callers already wait for IDs`),
      );
    }
    return new Promise<number>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.refill();
    });
  }

  /**
   * The next ID if one is in memory and nobody waits for one; else undefined (and a refill is
   * started, unless a background prefetch just failed: next() reports errors, this does not).
   */
  tryNext(): number | undefined {
    if (this.closed || this.waiters.length > 0) return undefined;
    if (this.cur === this.curEnd) {
      if (this.spareFirst === this.spareEnd) {
        if (!this.prefetchPaused) this.refill();
        return undefined;
      }
      this.cur = this.spareFirst;
      this.curEnd = this.spareEnd;
      this.spareFirst = this.spareEnd = 0;
    }
    const id = this.cur++;
    this.takenSinceMeasure++;
    this.maybePrefetch();
    return id;
  }

  /** Discards the blocks in memory (those IDs are skipped) and rejects every waiter. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.cur = this.curEnd = this.spareFirst = this.spareEnd = 0;
    const err = new ClientClosedError('client: block allocator closed');
    for (const waiter of this.waiters.drain()) waiter.reject(err);
  }

  private maybePrefetch(): void {
    if (this.refilling || this.prefetchPaused || this.spareFirst !== this.spareEnd) return;
    if (this.curEnd - this.cur < Math.ceil(this.size * refillFraction)) this.refill();
  }

  private refill(): void {
    if (this.refilling || this.closed) return;
    assert(this.spareFirst === this.spareEnd, 'block allocator: refill with a spare block');
    this.refilling = true;
    const count = this.nextBlockSize();
    let block: Promise<Allocation>;
    try {
      block = this.source.allocate(this.namespace, count, this.refillOptions);
    } catch (err) {
      block = Promise.reject(err);
    }
    block.then(
      (allocation) => this.onBlock(allocation),
      (err: unknown) => this.onRefillFailed(err),
    );
  }

  /** Measures the rate since the last refill and sizes the block to last about targetMs. */
  private nextBlockSize(): number {
    const nowMs = this.clock.monotonicMs();
    if (this.measuredFromMs !== undefined) {
      const sample = this.takenSinceMeasure / Math.max(nowMs - this.measuredFromMs, 1);
      const rate = this.rateIdsPerMs;
      this.rateIdsPerMs = rate === undefined ? sample : rate + (sample - rate) * rateSmoothing;
      this.size = this.clamp(Math.round(this.rateIdsPerMs * this.targetMs));
    }
    this.measuredFromMs = nowMs;
    this.takenSinceMeasure = 0;
    return this.clamp(Math.max(this.size, this.waiters.length));
  }

  private clamp(size: number): number {
    return Math.min(this.sizeMax, Math.max(this.sizeMin, size));
  }

  private onBlock(block: Allocation): void {
    this.refilling = false;
    if (this.closed) return; // discarded: these IDs are skipped
    let first = block.first;
    const end = block.first + block.count;
    for (let waiter = this.waiters.shift(); waiter !== undefined;) {
      this.takenSinceMeasure++;
      waiter.resolve(first++);
      waiter = first < end ? this.waiters.shift() : undefined;
    }
    this.prefetchPaused = false;
    if (first < end) {
      // Waiters only wait while memory is empty, so the current block is empty or still in
      // use and the spare is empty: the new block goes after what is left.
      assert(this.spareFirst === this.spareEnd, 'block allocator: a block arrived with a spare');
      if (this.cur === this.curEnd) [this.cur, this.curEnd] = [first, end];
      else [this.spareFirst, this.spareEnd] = [first, end];
    }
    if (this.waiters.length > 0) this.refill();
    else this.maybePrefetch();
  }

  private onRefillFailed(err: unknown): void {
    this.refilling = false;
    if (this.closed) return;
    if (this.waiters.length === 0) {
      this.prefetchPaused = true;
      return;
    }
    for (const waiter of this.waiters.drain()) waiter.reject(err);
  }
}

function checkOptions(min: number, max: number, initial: number, targetMs: number): void {
  const ok =
    Number.isInteger(min) &&
    Number.isInteger(max) &&
    Number.isInteger(initial) &&
    min >= 1 &&
    min <= max &&
    max <= blockSizeMax &&
    initial >= min &&
    initial <= max &&
    targetMs > 0;
  if (!ok) {
    throw new RangeError(
      `client: block sizes must be integers with 1 <= blockSizeMin <= blockSizeInitial <= blockSizeMax <= ${blockSizeMax}, and blockTargetMs > 0`,
    );
  }
}
