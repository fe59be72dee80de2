/**
 * The write-ahead log: a directory of fixed-size, preallocated segments (see record.ts for
 * the record format and decoder.ts for how a segment's end is classified).
 *
 * open() verifies every segment, replays records after the snapshot index, and cuts off a torn
 * tail of the last segment (zeroing it durably so later appends cannot leave stale bytes behind).
 * append() writes one encoded batch durably: one O_DSYNC write per batch (writeDurable), where
 * write + fdatasync would cost two system calls and a second wait on the disk.
 */
import * as path from 'node:path';
import type { Logger } from 'pino';
import { assert } from '../core/assert';
import { systemClock, type Clock } from '../core/clock';
import { CorruptionError, NoSpaceError, StorageFatalError, isErrno } from '../core/errors';
import { nonZeroEnd, scanSegment } from './decoder';
import { readU64, recordBytesMax, recordHeaderBytes, type WalRecord } from './record';

/** Bytes read at a time while skipping to a record in the middle of a segment. */
const readChunkBytes = 1024 * 1024;
import {
  Preallocator,
  createZeroFilled,
  listSegments,
  preallocName,
  segmentName,
} from './segment-files';
import type { Storage, StorageFile } from './storage';

export interface WalOptions {
  storage: Storage;
  dir: string;
  segmentSizeBytes: number;
  logger: Logger;
  clock?: Clock;
  /**
   * The log must already exist (the node has served before): finding no segment then means
   * the WAL was lost, and starting empty would send every counter backwards.
   */
  requireExisting?: boolean;
  /**
   * Runs, and must complete durably, before open() cuts a torn tail off: the caller records
   * that the log may have lost records (a crash right after the cut then still knows).
   */
  beforeTornTailCut?: () => Promise<void>;
}

/** Where an epoch's records begin in the log. */
export interface EpochBoundary {
  index: number;
  epoch: number;
}

interface Segment {
  firstIndex: number;
  path: string;
  sizeBytes: number;
}

export interface WalRecovery {
  /** Records replayed (index > fromIndex). */
  replayed: number;
  lastIndex: number;
  lastEpoch: number;
  tornTail: { file: string; offset: number } | null;
}

export class Wal {
  private segments: Segment[] = [];
  private file: StorageFile | null = null;
  /** Write offset in the last segment. */
  private offset = 0;
  /** Bytes of a failed (ENOSPC) write that must be zeroed before the next append. */
  private dirtyBytes = 0;
  private nextIndexValue = 1;
  private fatal: StorageFatalError | null = null;
  /** Where each epoch's records begin, ascending: answers epochAt() for log matching. */
  private epochStarts: EpochBoundary[] = [];
  private readonly preallocator: Preallocator;
  /** Where the last readFrom() stopped: the next sequential read starts there. */
  private readCursor: { segment: Segment; index: number; offset: number } | null = null;

  private constructor(private readonly opts: WalOptions) {
    this.preallocator = new Preallocator(
      opts.storage,
      opts.dir,
      opts.segmentSizeBytes,
      opts.clock ?? systemClock,
    );
  }

  /** Index the next appended record must carry. */
  get nextIndex(): number {
    return this.nextIndexValue;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  get diskBytes(): number {
    return this.segments.reduce((sum, s) => sum + s.sizeBytes, 0);
  }

  /** Room left in the current segment. */
  get segmentRemainingBytes(): number {
    const last = this.segments[this.segments.length - 1];
    return last ? last.sizeBytes - this.offset : 0;
  }

  /**
   * A segment with less room than the largest record is full: every batch then goes to the
   * next segment, whatever its size. (Letting small batches squeeze into the remainder would
   * make a full disk refuse big batches and accept small ones.)
   */
  get segmentFull(): boolean {
    return this.segmentRemainingBytes < recordBytesMax;
  }

  /** The most bytes the next batch may have: the segment's remainder, or a whole new one. */
  batchRoomBytes(bufferBytes: number): number {
    return this.segmentFull ? bufferBytes : Math.min(bufferBytes, this.segmentRemainingBytes);
  }

  static async open(
    opts: WalOptions,
    fromIndex: number,
    onRecord: (record: WalRecord) => void,
  ): Promise<{ wal: Wal; recovery: WalRecovery }> {
    const wal = new Wal(opts);
    let recovery: WalRecovery;
    try {
      recovery = await wal.recover(fromIndex, onRecord);
    } catch (err) {
      await wal.close().catch(() => undefined);
      throw err;
    }
    wal.preallocator.start();
    return { wal, recovery };
  }

  private async recover(
    fromIndex: number,
    onRecord: (record: WalRecord) => void,
  ): Promise<WalRecovery> {
    const { storage, dir } = this.opts;
    if (!(await storage.exists(dir))) {
      await storage.mkdir(dir);
      await storage.syncDir(path.dirname(dir)); // the new directory's own entry
    }
    if (await storage.exists(path.join(dir, preallocName))) {
      await storage.unlink(path.join(dir, preallocName));
    }
    this.segments = (await listSegments(storage, dir)).map((e) => ({
      firstIndex: e.firstIndex,
      path: path.join(dir, e.name),
      sizeBytes: 0,
    }));
    if (this.segments.length === 0) {
      if (this.opts.requireExisting) {
        throw new CorruptionError(
          `wal: no segments in ${dir}, but this node has written before: the WAL is missing`,
        );
      }
      await this.createSegment(fromIndex + 1);
      this.nextIndexValue = fromIndex + 1;
      return { replayed: 0, lastIndex: fromIndex, lastEpoch: 0, tornTail: null };
    }
    const first = this.segments[0] as Segment;
    if (first.firstIndex > fromIndex + 1) {
      throw new CorruptionError(
        `wal: records ${fromIndex + 1}..${first.firstIndex - 1} are missing (first segment ${path.basename(first.path)})`,
      );
    }
    return this.replaySegments(fromIndex, onRecord);
  }

  private async replaySegments(
    fromIndex: number,
    onRecord: (record: WalRecord) => void,
  ): Promise<WalRecovery> {
    const recovery: WalRecovery = { replayed: 0, lastIndex: 0, lastEpoch: 0, tornTail: null };
    let buf = Buffer.alloc(0);
    let expected = (this.segments[0] as Segment).firstIndex;
    for (let i = 0; i < this.segments.length; i++) {
      const segment = this.segments[i] as Segment;
      const name = path.basename(segment.path);
      const isLast = i === this.segments.length - 1;
      if (segment.firstIndex !== expected) {
        throw new CorruptionError(
          `wal: segment ${name} starts at index ${segment.firstIndex}, expected ${expected}`,
        );
      }
      const file = await this.opts.storage.open(segment.path, isLast ? 'readwrite' : 'read');
      segment.sizeBytes = await file.size();
      if (buf.length < segment.sizeBytes) buf = Buffer.allocUnsafe(segment.sizeBytes);
      const n = await file.read(buf, 0, segment.sizeBytes, 0);
      assert(n === segment.sizeBytes, 'segment read whole');
      const scan = scanSegment(buf, n, segment.firstIndex, recovery.lastEpoch, (record) => {
        this.noteEpoch(record.index, record.epoch);
        if (record.index > fromIndex) {
          onRecord(record);
          recovery.replayed++;
        }
      });
      recovery.lastEpoch = scan.lastEpoch;
      expected = scan.lastIndex + 1;
      const end = scan.end;
      if (end.kind === 'corrupt' || (end.kind === 'torn' && !isLast)) {
        await file.close();
        const why = end.kind === 'corrupt' ? end.message : 'torn record before the last segment';
        throw new CorruptionError(`wal: ${why} in segment ${name} at offset ${end.offset}`);
      }
      if (!isLast) {
        await file.close();
        continue;
      }
      if (end.kind === 'torn') {
        await this.opts.beforeTornTailCut?.();
        await this.zeroRange(file, end.offset, end.dataEnd);
        recovery.tornTail = { file: name, offset: end.offset };
        this.opts.logger.warn(
          { file: name, offset: end.offset, bytes: end.dataEnd - end.offset },
          'wal: cut off torn tail',
        );
      }
      this.file = file;
      this.offset = end.offset;
    }
    recovery.lastIndex = expected - 1;
    this.nextIndexValue = expected;
    if (recovery.lastIndex < fromIndex) {
      throw new CorruptionError(
        `wal: log ends at index ${recovery.lastIndex}, before the snapshot index ${fromIndex}`,
      );
    }
    return recovery;
  }

  /** Overwrites [from, to) with zeros and makes it durable (torn tails, truncation). */
  private async zeroRange(file: StorageFile, from: number, to: number): Promise<void> {
    if (to <= from) return;
    await file.write(Buffer.alloc(to - from), 0, to - from, from);
    await file.datasync();
  }

  private async createSegment(firstIndex: number, preparedPath?: string): Promise<void> {
    const { storage, dir, segmentSizeBytes } = this.opts;
    const target = path.join(dir, segmentName(firstIndex));
    if (preparedPath) await storage.rename(preparedPath, target);
    else await createZeroFilled(storage, target, segmentSizeBytes);
    await storage.syncDir(dir);
    const file = await storage.open(target, 'readwrite');
    await this.file?.close();
    this.file = file;
    this.offset = 0;
    this.segments.push({ firstIndex, path: target, sizeBytes: segmentSizeBytes });
  }

  /**
   * Writes `count` records already encoded in buf[0, length) — indexes nextIndex .. +count-1 —
   * with one durable write (StorageFile.writeDurable: O_DSYNC, no separate fdatasync).
   * Rollover and zeroing a refused write's leftovers come first; then `beforeWrite` runs, then
   * the write. Replication hands the batch to the standby in `beforeWrite`, before the local
   * write starts, so the standby's write and fsync overlap the local one.
   *
   * Errors: NoSpaceError when the disk was full before anything was handed over (nothing
   * written, nothing advanced; the next append may succeed), StorageFatalError for anything
   * else. After a fatal error every append fails: the file's durable state is unknown and a
   * failed durable write is never retried on the same descriptor.
   *
   * Once `beforeWrite` has run, any failure of the local write is fatal, ENOSPC included: the
   * standby may already hold these records, and a retryable refusal would let the next batch
   * reuse the same indexes in the same epoch with different records — log matching would then
   * take the standby's records for the primary's. Without a hook (a standalone node, a standby
   * appending what it received) an ENOSPC from the write stays a NoSpaceError: its bytes are
   * zeroed before the next append, which may succeed.
   */
  async append(
    buf: Buffer,
    length: number,
    count: number,
    beforeWrite?: () => void,
  ): Promise<void> {
    assert(length > 0 && count > 0, 'append: non-empty batch');
    assert(length <= this.opts.segmentSizeBytes, 'append: batch fits one segment');
    if (this.fatal) throw this.fatal;
    this.checkContinues(buf, length, count);
    let handedOver = false;
    try {
      if (this.dirtyBytes > 0) await this.zeroDirty();
      if (this.segmentFull || length > this.segmentRemainingBytes) await this.rollover();
      if (beforeWrite) {
        handedOver = true; // before the call: a hook that throws may have sent part of it
        beforeWrite();
      }
      await this.writeDurableAtOffset(buf, length);
    } catch (err) {
      if (err instanceof NoSpaceError && !handedOver) throw err;
      const what = handedOver ? 'write of a batch already handed to the standby' : 'write';
      this.fatal = new StorageFatalError(`wal: ${what} failed: ${(err as Error).message}`, {
        cause: err,
      });
      throw this.fatal;
    }
    for (let at = 0, index = this.nextIndexValue; at < length; index++) {
      this.noteEpoch(index, readU64(buf, at + 8));
      at += buf.readUInt32LE(at);
    }
    this.offset += length;
    this.nextIndexValue += count;
  }

  /**
   * Before a batch is written (by the primary's committer, or a standby appending what it
   * received): whole records, as many as announced, their indexes continuing the log with no
   * gap or repeat, and their epochs never below the epoch of the record before them.
   */
  private checkContinues(buf: Buffer, length: number, count: number): void {
    let epoch = this.epochStarts[this.epochStarts.length - 1]?.epoch ?? 0;
    let at = 0;
    let k = 0;
    for (; at < length; k++) {
      const bytes = buf.readUInt32LE(at);
      const index = readU64(buf, at + 16);
      const recordEpoch = readU64(buf, at + 8);
      if (bytes === 0 || index !== this.nextIndexValue + k || recordEpoch < epoch) {
        assert(
          false,
          `wal: record ${k} of a batch (index ${index}, epoch ${recordEpoch}, ${bytes} bytes) does not continue the log at index ${this.nextIndexValue + k} after epoch ${epoch}`,
        );
      }
      epoch = recordEpoch;
      at += bytes;
    }
    if (at !== length || k !== count) {
      assert(false, `wal: a batch of ${count} records in ${length} bytes holds ${k} in ${at}`);
    }
  }

  private noteEpoch(index: number, epoch: number): void {
    const last = this.epochStarts[this.epochStarts.length - 1];
    if (last === undefined || last.epoch !== epoch) this.epochStarts.push({ index, epoch });
  }

  /**
   * The epoch of the record at `index`, or null when the log does not hold it (compacted
   * into the snapshot, or past the tail): the (epoch, index) pair that log matching compares.
   */
  epochAt(index: number): number | null {
    if (index < this.firstIndex || index >= this.nextIndexValue) return null;
    let epoch: number | null = null;
    for (const start of this.epochStarts) {
      if (start.index > index) break;
      epoch = start.epoch;
    }
    return epoch;
  }

  /**
   * Epoch boundaries of the records in the log (firstIndex .. nextIndex-1), ascending; the first
   * entry's index is clamped to firstIndex when its epoch began in a compacted segment.
   */
  epochs(): EpochBoundary[] {
    const first = this.firstIndex;
    const out: EpochBoundary[] = [];
    for (let k = 0; k < this.epochStarts.length; k++) {
      const start = this.epochStarts[k] as EpochBoundary;
      const next = this.epochStarts[k + 1];
      if (next !== undefined && next.index <= first) continue;
      if (start.index >= this.nextIndexValue) break;
      out.push({ index: Math.max(start.index, first), epoch: start.epoch });
    }
    return out;
  }

  /** The batch at the write offset, durable when it resolves. */
  private async writeDurableAtOffset(buf: Buffer, length: number): Promise<void> {
    try {
      await (this.file as StorageFile).writeDurable(buf, 0, length, this.offset);
    } catch (err) {
      throw this.noSpace(err, length);
    }
  }

  /** Zeroes what a refused write may have left, so a shorter batch cannot leave it behind. */
  private async zeroDirty(): Promise<void> {
    const file = this.file as StorageFile;
    try {
      await file.write(Buffer.alloc(this.dirtyBytes), 0, this.dirtyBytes, this.offset);
    } catch (err) {
      throw this.noSpace(err, this.dirtyBytes);
    }
    await file.datasync();
    this.dirtyBytes = 0;
  }

  /**
   * A write refused for lack of space advanced nothing, but may have left part of its bytes
   * (a short write before the ENOSPC): remember how much to zero before the next append and
   * refuse with NoSpaceError (append() makes that fatal once the batch was handed over).
   * Any other error is returned as it is.
   */
  private noSpace(err: unknown, length: number): unknown {
    if (!isErrno(err, 'ENOSPC')) return err;
    this.dirtyBytes = Math.max(this.dirtyBytes, length);
    return new NoSpaceError('wal: no space left on device', { cause: err });
  }

  private async rollover(): Promise<void> {
    const prepared = await this.preallocator.take();
    await this.createSegment(this.nextIndexValue, prepared);
    this.preallocator.start();
  }

  /**
   * Deletes segments whose records all have index <= uptoIndex (never the current one), oldest
   * first, each deletion made durable before the next so a crash never leaves a gap.
   */
  async compact(uptoIndex: number): Promise<number> {
    let removed = 0;
    while (this.segments.length > 1 && (this.segments[1] as Segment).firstIndex <= uptoIndex + 1) {
      const segment = this.segments.shift() as Segment;
      await this.opts.storage.unlink(segment.path);
      await this.opts.storage.syncDir(this.opts.dir);
      removed++;
    }
    // Boundaries wholly below the log are forgotten (the one still covering firstIndex stays).
    while (
      this.epochStarts.length > 1 &&
      (this.epochStarts[1] as EpochBoundary).index <= this.firstIndex
    ) {
      this.epochStarts.shift();
    }
    return removed;
  }

  /** First index still in the log (records below it were compacted into a snapshot). */
  get firstIndex(): number {
    return (this.segments[0] as Segment).firstIndex;
  }

  /**
   * Reads whole records starting at `fromIndex` — at most `maxBytes` of them (at least one),
   * never past the last durable record — as their on-disk bytes. Returns null when `fromIndex`
   * was compacted away (the reader needs a snapshot first). Sequential reads continue from a
   * remembered offset, so catching up reads each segment once.
   */
  async readFrom(
    fromIndex: number,
    maxBytes: number,
  ): Promise<{ buf: Buffer; records: number } | null> {
    assert(fromIndex >= 1 && fromIndex <= this.nextIndexValue, 'readFrom: index within the log');
    if (fromIndex < this.firstIndex) return null;
    if (fromIndex === this.nextIndexValue) return { buf: Buffer.alloc(0), records: 0 };
    const segment = this.segmentHolding(fromIndex);
    const cursor = this.readCursor;
    let at = { index: segment.firstIndex, offset: 0 };
    if (cursor && cursor.segment === segment && cursor.index <= fromIndex) at = { ...cursor };
    const file = await this.opts.storage.open(segment.path, 'read');
    try {
      while (at.index < fromIndex) {
        at = await this.walkRecords(file, at, fromIndex, readChunkBytes, null);
      }
      const out = { buf: Buffer.alloc(0), records: 0 };
      const end = await this.walkRecords(file, at, this.nextIndexValue, maxBytes, out);
      assert(out.records > 0, 'readFrom: at least one record read');
      this.readCursor = { segment, ...end };
      return out;
    } finally {
      await file.close();
    }
  }

  /**
   * Walks records from `at` toward index `until` within one read of up to `budget` bytes (one
   * record more if the first is larger); copies them into `out` when given. Returns where it
   * stopped.
   */
  private async walkRecords(
    file: StorageFile,
    at: { index: number; offset: number },
    until: number,
    budget: number,
    out: { buf: Buffer; records: number } | null,
  ): Promise<{ index: number; offset: number }> {
    const chunk = Buffer.allocUnsafe(budget + recordBytesMax);
    const n = await file.read(chunk, 0, chunk.length, at.offset);
    let pos = 0;
    let index = at.index;
    while (index < until && pos + recordHeaderBytes <= n) {
      const length = chunk.readUInt32LE(pos);
      if (length < recordHeaderBytes || pos + length > n) break;
      if (pos + length > budget && pos > 0) break;
      assert(readU64(chunk, pos + 16) === index, 'readFrom: records in sequence');
      pos += length;
      index++;
    }
    assert(pos > 0, 'readFrom: a whole record within one read');
    if (out) {
      out.buf = Buffer.from(chunk.subarray(0, pos));
      out.records = index - at.index;
    }
    return { index, offset: at.offset + pos };
  }

  /** The segment whose records include `index`. */
  private segmentHolding(index: number): Segment {
    let found = this.segments[0] as Segment;
    for (const segment of this.segments) if (segment.firstIndex <= index) found = segment;
    return found;
  }

  /**
   * Durably removes every record after `index` (a suffix the primary does not have). Later
   * segments go first, newest first, then the tail of the segment holding index+1 is zeroed:
   * a crash at any step leaves a log that is a prefix of the old one, never one with a gap.
   */
  async truncateAfter(index: number): Promise<number> {
    if (this.fatal) throw this.fatal;
    assert(index >= this.firstIndex - 1, 'truncateAfter: not below the compacted prefix');
    if (index >= this.nextIndexValue - 1) return 0;
    const removed = this.nextIndexValue - 1 - index;
    const keep = this.segmentHolding(index + 1);
    while (this.segments[this.segments.length - 1] !== keep) {
      const dropped = this.segments.pop() as Segment;
      await this.file?.close();
      this.file = null;
      await this.opts.storage.unlink(dropped.path);
      await this.opts.storage.syncDir(this.opts.dir);
    }
    const file = this.file ?? (await this.opts.storage.open(keep.path, 'readwrite'));
    this.file = file;
    const data = await this.opts.storage.readFile(keep.path);
    let cut = -1;
    const scan = scanSegment(data, data.length, keep.firstIndex, 0, (record, offset) => {
      if (record.index === index + 1) cut = offset;
    });
    if (cut < 0) cut = scan.end.offset; // index+1 is this segment's first record and it is empty
    // Everything non-zero after the cut goes, including bytes a refused write left behind.
    await this.zeroRange(file, cut, nonZeroEnd(data, cut, data.length));
    this.offset = cut;
    this.dirtyBytes = 0;
    this.nextIndexValue = index + 1;
    this.readCursor = null;
    this.epochStarts = this.epochStarts.filter((start) => start.index <= index);
    this.opts.logger.warn({ afterIndex: index, removed }, 'wal: truncated unacknowledged suffix');
    return removed;
  }

  async close(): Promise<void> {
    await this.preallocator.settle();
    await this.file?.close();
    this.file = null;
  }
}
