/**
 * A node's log and the state it produces: WAL + counters + snapshot, whatever the node's role.
 * Recovery (snapshot, then WAL replay), checkpoints and compaction, and the operations a
 * standby needs: appending records received from the primary, cutting an unacknowledged
 * suffix (the counters come down with it), and replacing everything with a snapshot.
 */
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock';
import { NoSpaceError, StorageFatalError, isErrno, type TallyError } from '../core/errors';
import type { Metrics } from '../core/metrics';
import { CounterState } from '../state/counters';
import { assert, rethrowIfAssertion } from '../core/assert';
import { helloEpochsMax } from '../core/limits';
import { RecordType, decodeRecord, type WalRecord } from '../wal/record';
import { walDirName } from '../wal/segment-files';
import {
  epochHistoryValid,
  readSnapshot,
  snapshotFileName,
  writeSnapshot,
  type Snapshot,
} from '../wal/snapshot';
import type { Storage } from '../wal/storage';
import { Wal, type EpochBoundary } from '../wal/wal';
import type { TransferSnapshot } from '../replication/protocol';
import type { CheckpointInfo } from './types';
import { planted } from '../core/planted-bugs';

export interface LogStoreOptions {
  storage: Storage;
  dataDir: string;
  segmentSizeBytes: number;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Automatic checkpoints after this many records or WAL bytes since the last one. */
  checkpointRecords: number;
  checkpointBytes: number;
  /** The node has written before: a missing WAL is an error, not a fresh start. */
  requireExisting: boolean;
  /** Called when a checkpoint failed in a way that leaves the directory unknown. */
  onFatal(err: StorageFatalError): void;
  /** See WalOptions.beforeTornTailCut. */
  beforeTornTailCut?: () => Promise<void>;
}

/** After a checkpoint failed for lack of space, the next automatic one waits this long. */
const checkpointRetryMs = 10_000;

interface PendingCheckpoint {
  snapshot: Snapshot;
  /** bytesSinceCheckpoint when the snapshot was captured (what writing it accounts for). */
  bytesAtCapture: number;
}

export class LogStore {
  state = new CounterState();
  /** Last record whose effects are in `state` (acknowledged, on a primary). */
  appliedIndex = 0;
  checkpointIndex = 0;
  checkpointUnixMs = 0;
  /** Epoch of the record at checkpointIndex. */
  snapshotEpoch = 0;
  /**
   * Where the epochs of the records compacted into the snapshot began (kept with it). The WAL
   * forgets the boundaries of compacted segments; without these a primary that compacted away
   * a whole epoch could not match a returning standby whose log ends in it (and took that for
   * lost history: the cluster stopped serving).
   */
  private historyBelow: EpochBoundary[] = [];
  private bytesSinceCheckpoint = 0;
  private checkpointRunning: Promise<CheckpointInfo> | null = null;
  private checkpointNotBeforeMs = 0;
  private gaugedSegments = 0;
  private readonly log: Logger;

  private constructor(
    private readonly opts: LogStoreOptions,
    public wal: Wal,
  ) {
    this.log = opts.logger.child({ module: 'node' });
  }

  /** Loads the snapshot and replays the WAL after it. */
  static async open(
    opts: LogStoreOptions,
    freshWal = false,
    /** Internal: the planted recovery bug already cut a record. */
    reopened = false,
  ): Promise<{ store: LogStore; lastEpoch: number }> {
    const started = opts.clock.monotonicMs();
    const snapshot = await readSnapshot(opts.storage, opts.dataDir);
    const state = new CounterState();
    if (snapshot) state.load(snapshot.counters, snapshot.floor ?? 0);
    const fromIndex = snapshot?.index ?? 0;
    const { wal, recovery } = await Wal.open(
      LogStore.walOptions(opts, !freshWal && (opts.requireExisting || snapshot !== null)),
      fromIndex,
      (record) => applyRecord(state, record),
    );
    if (planted('truncate-acked-at-recovery') && !reopened && recovery.lastIndex > fromIndex + 1) {
      // The planted bug: the last record is taken for a torn one, durable or not.
      await wal.truncateAfter(recovery.lastIndex - 1);
      await wal.close();
      return LogStore.open(opts, freshWal, true);
    }
    const store = new LogStore(opts, wal);
    store.state = state;
    store.appliedIndex = recovery.lastIndex;
    store.checkpointIndex = fromIndex;
    store.checkpointUnixMs = snapshot?.unixMs ?? 0;
    store.snapshotEpoch = snapshot?.epoch ?? 0;
    store.historyBelow = snapshot?.epochs ?? [];
    const recoverySeconds = (opts.clock.monotonicMs() - started) / 1000;
    opts.metrics.recoveryDurationSeconds.set(recoverySeconds);
    opts.metrics.recoveryRecords.set(recovery.replayed);
    store.log.info(
      {
        snapshotIndex: fromIndex,
        replayed: recovery.replayed,
        lastIndex: recovery.lastIndex,
        recoverySeconds,
        tornTail: recovery.tornTail,
      },
      'node: recovered',
    );
    store.updateWalGauges();
    return { store, lastEpoch: Math.max(snapshot?.epoch ?? 0, recovery.lastEpoch) };
  }

  private static walOptions(opts: LogStoreOptions, requireExisting: boolean) {
    return {
      storage: opts.storage,
      dir: path.join(opts.dataDir, walDirName),
      segmentSizeBytes: opts.segmentSizeBytes,
      logger: opts.logger.child({ module: 'wal' }),
      clock: opts.clock,
      requireExisting,
      beforeTornTailCut: opts.beforeTornTailCut,
    };
  }

  /** Deletes the WAL and the snapshot durably (an interrupted snapshot install). */
  static async discard(storage: Storage, dataDir: string): Promise<void> {
    const walDir = path.join(dataDir, walDirName);
    if (await storage.exists(walDir)) {
      for (const name of await storage.list(walDir)) await storage.unlink(path.join(walDir, name));
      await storage.syncDir(walDir);
    }
    const snapshotPath = path.join(dataDir, snapshotFileName);
    if (await storage.exists(snapshotPath)) {
      await storage.unlink(snapshotPath);
      await storage.syncDir(dataDir);
    }
  }

  /**
   * Where each epoch of the log began, ascending: the snapshot's boundaries below the WAL, then
   * the WAL's. Where nothing older is known (a snapshot written before boundaries were kept)
   * the first one is clamped to where knowledge starts, which only under-states a range.
   */
  epochs(): EpochBoundary[] {
    const firstInWal = this.wal.firstIndex;
    const out = this.historyBelow.filter((b) => b.index < firstInWal);
    for (const b of this.wal.epochs()) {
      if (out[out.length - 1]?.epoch !== b.epoch) out.push(b);
    }
    return out;
  }

  /** The highest epoch any record in the log (or the snapshot) carries. */
  get highestEpoch(): number {
    const epochs = this.wal.epochs();
    return Math.max(this.snapshotEpoch, epochs[epochs.length - 1]?.epoch ?? 0);
  }

  /** Epoch of the last record in the log (the snapshot's when the WAL is empty; 0 if none). */
  get lastEpoch(): number {
    return this.epochAt(this.lastIndex) ?? this.highestEpoch;
  }

  /** The last index in the WAL (ahead of appliedIndex while a primary waits for acks). */
  get lastIndex(): number {
    return this.wal.nextIndex - 1;
  }

  /** Epoch of the record at `index`: 0 before the log, the snapshot's at its index. */
  epochAt(index: number): number | null {
    if (index === 0) return 0;
    const inWal = this.wal.epochAt(index);
    if (inWal !== null) return inWal;
    return index === this.checkpointIndex ? this.snapshotEpoch : null;
  }

  /**
   * Appends records received from the primary (verified), fsyncs, applies them. A batch that
   * does not fit this node's segment is written in pieces; each piece is applied as soon as
   * it is durable, so the counters never lag the WAL, even when a later piece fails.
   */
  async appendReceived(records: Buffer, count: number): Promise<void> {
    let offset = 0;
    let done = 0;
    try {
      while (done < count) {
        const room = this.wal.batchRoomBytes(
          Math.min(records.length - offset, this.opts.segmentSizeBytes),
        );
        let end = offset;
        let n = 0;
        while (done + n < count) {
          const length = records.readUInt32LE(end);
          if (end + length - offset > room && n > 0) break;
          end += length;
          n++;
        }
        await this.wal.append(records.subarray(offset, end), end - offset, n);
        this.applyRange(records, offset, end);
        this.appliedIndex = this.wal.nextIndex - 1;
        offset = end;
        done += n;
      }
    } finally {
      this.noteDurable(this.appliedIndex, offset);
    }
  }

  /** Records in buf[from, to) were verified by the receiver (CRCs, sequence): decode only. */
  private applyRange(buf: Buffer, from: number, to: number): void {
    for (let at = from; at < to;) {
      const length = buf.readUInt32LE(at);
      const record = decodeRecord(buf, at, length);
      assert(record !== null, 'appendReceived: verified record decodes');
      applyRecord(this.state, record);
      at += length;
    }
  }

  /**
   * After records up to lastIndex took effect: checkpoint when due. With a ceiling (a standby),
   * the snapshot is captured now but written only once the primary's acknowledged index
   * covers it, so a standby snapshot never holds a record that may yet be truncated.
   */
  noteDurable(lastIndex: number, bytes: number, canCheckpoint = true): void {
    this.appliedIndex = lastIndex;
    if (this.wal.segmentCount !== this.gaugedSegments) this.updateWalGauges();
    this.bytesSinceCheckpoint += bytes;
    const due =
      lastIndex - this.checkpointIndex >= this.opts.checkpointRecords ||
      this.bytesSinceCheckpoint >= this.opts.checkpointBytes;
    const backedOff = this.opts.clock.monotonicMs() < this.checkpointNotBeforeMs;
    if (!due || !canCheckpoint || backedOff || this.checkpointRunning !== null) return;
    if (this.checkpointCeiling === null) {
      this.checkpoint().catch((err: unknown) => this.autoCheckpointFailed(err));
      return;
    }
    this.pendingCheckpoint ??= this.captureSnapshot();
    this.writePendingCheckpoint();
  }

  /**
   * Standby: the primary has acknowledged every record up to `index` (so none of them will
   * ever be truncated). `null` lifts the ceiling (after a promotion the log is this node's).
   */
  noteAcknowledged(index: number | null): void {
    this.checkpointCeiling = index === null ? null : Math.max(this.checkpointCeiling ?? 0, index);
    this.writePendingCheckpoint();
  }

  private writePendingCheckpoint(): void {
    const pending = this.pendingCheckpoint;
    if (pending === null || this.checkpointRunning !== null) return;
    if (this.checkpointCeiling !== null && pending.snapshot.index > this.checkpointCeiling) return;
    this.pendingCheckpoint = null;
    this.checkpointRunning = this.runCheckpoint(pending).finally(
      () => (this.checkpointRunning = null),
    );
    this.checkpointRunning.catch((err: unknown) => this.autoCheckpointFailed(err));
  }

  private autoCheckpointFailed(err: unknown): void {
    rethrowIfAssertion(err);
    this.log.error({ err: (err as Error).message }, 'node: automatic checkpoint failed');
  }

  /** Counters and index at this moment, taken synchronously so they describe the same point. */
  private captureSnapshot(): PendingCheckpoint {
    return {
      snapshot: {
        index: this.appliedIndex,
        epoch: this.epochAt(this.appliedIndex) ?? 0,
        unixMs: this.opts.clock.nowUnixMs(),
        counters: this.state.durableEntries(),
        floor: this.state.floor,
        epochs: this.epochsUpTo(this.appliedIndex),
      },
      bytesAtCapture: this.bytesSinceCheckpoint,
    };
  }

  /** The boundaries of the epochs of records up to `index` (the newest helloEpochsMax). */
  private epochsUpTo(index: number): EpochBoundary[] {
    return this.epochs()
      .filter((b) => b.index <= index)
      .slice(-helloEpochsMax);
  }

  /** Standby: the highest index the primary has acknowledged; null on a primary or standalone. */
  private checkpointCeiling: number | null = null;
  private pendingCheckpoint: PendingCheckpoint | null = null;

  /**
   * Durably removes every record after `index` and rebuilds the counters from the snapshot
   * and the records that remain, so they come down with the cut.
   */
  async truncateAfter(index: number): Promise<number> {
    await this.checkpointRunning?.catch(() => undefined);
    this.pendingCheckpoint = null; // its counters may include what is cut
    const removed = await this.wal.truncateAfter(index);
    await this.wal.close();
    const { store } = await LogStore.open({ ...this.opts, requireExisting: true });
    this.adopt(store);
    return removed;
  }

  /** Replaces log and counters with a snapshot at its index; the WAL restarts after it. */
  async installSnapshot(transfer: TransferSnapshot): Promise<void> {
    await this.checkpointRunning?.catch(() => undefined);
    this.pendingCheckpoint = null;
    await this.wal.close();
    await LogStore.discard(this.opts.storage, this.opts.dataDir);
    const snapshot: Snapshot = {
      index: transfer.index,
      epoch: transfer.indexEpoch,
      unixMs: this.opts.clock.nowUnixMs(),
      counters: transfer.counters,
      floor: transfer.floor,
      // A sender's boundaries that do not fit its own snapshot are not kept (none is better
      // than wrong ones: matching then falls back to what the WAL knows).
      epochs: epochHistoryValid(transfer.epochs, transfer.index)
        ? transfer.epochs.slice(-helloEpochsMax)
        : [],
    };
    await writeSnapshot(this.opts.storage, this.opts.dataDir, snapshot);
    const { store } = await LogStore.open(this.opts, true);
    this.adopt(store);
  }

  private adopt(other: LogStore): void {
    this.wal = other.wal;
    this.state = other.state;
    this.appliedIndex = other.appliedIndex;
    this.checkpointIndex = other.checkpointIndex;
    this.checkpointUnixMs = other.checkpointUnixMs;
    this.snapshotEpoch = other.snapshotEpoch;
    this.historyBelow = other.historyBelow;
    this.bytesSinceCheckpoint = 0;
    this.updateWalGauges();
  }

  /** The newest snapshot for a standby that needs compacted records (index 0 if none). */
  async snapshotForTransfer(): Promise<TransferSnapshot> {
    const snapshot = await readSnapshot(this.opts.storage, this.opts.dataDir);
    if (snapshot === null) return { index: 0, indexEpoch: 0, counters: [], floor: 0, epochs: [] };
    return {
      index: snapshot.index,
      indexEpoch: snapshot.epoch,
      counters: snapshot.counters,
      floor: snapshot.floor ?? 0,
      epochs: snapshot.epochs ?? [],
    };
  }

  /**
   * Snapshot of the applied state, then compaction below it. On a standby whose applied
   * records the primary has not all confirmed acknowledged, the snapshot is captured now and
   * written once it is (`scheduled`): the primary's acknowledged index reaches a standby only
   * with the next Append, so an idle standby always holds records it cannot yet snapshot. If
   * those records are cut instead (they were never acknowledged), the capture is dropped.
   */
  checkpoint(): Promise<CheckpointInfo> {
    if (this.checkpointRunning !== null) return this.checkpointRunning;
    const ceiling = this.checkpointCeiling;
    if (ceiling !== null && this.appliedIndex > ceiling) {
      this.pendingCheckpoint ??= this.captureSnapshot();
      // A capture from before, now covered (it waited for a checkpoint that was running).
      this.writePendingCheckpoint();
      if (this.checkpointRunning !== null) return this.checkpointRunning;
      const pending = this.pendingCheckpoint as PendingCheckpoint;
      return Promise.resolve({
        index: pending.snapshot.index,
        segmentsRemoved: 0,
        durationUs: 0,
        scheduled: true,
        acknowledgedIndex: ceiling,
      });
    }
    this.pendingCheckpoint = null;
    this.checkpointRunning = this.runCheckpoint(this.captureSnapshot()).finally(
      () => (this.checkpointRunning = null),
    );
    return this.checkpointRunning;
  }

  private async runCheckpoint(pending: PendingCheckpoint): Promise<CheckpointInfo> {
    const started = this.opts.clock.monotonicMs();
    const { snapshot } = pending;
    const wal = this.wal;
    try {
      await writeSnapshot(this.opts.storage, this.opts.dataDir, snapshot);
    } catch (err) {
      throw this.checkpointFailed(err);
    }
    this.checkpointIndex = snapshot.index;
    this.checkpointUnixMs = snapshot.unixMs;
    this.snapshotEpoch = snapshot.epoch;
    // Before compaction drops the WAL's boundaries below the snapshot.
    this.historyBelow = snapshot.epochs ?? [];
    this.bytesSinceCheckpoint -= Math.min(this.bytesSinceCheckpoint, pending.bytesAtCapture);
    let segmentsRemoved: number;
    try {
      segmentsRemoved = await wal.compact(snapshot.index);
    } catch (err) {
      throw this.checkpointFailed(err);
    }
    this.updateWalGauges();
    const durationMs = this.opts.clock.monotonicMs() - started;
    this.opts.metrics.checkpoints.inc();
    this.opts.metrics.checkpointDurationSeconds.observe(durationMs / 1000);
    this.log.info(
      { index: snapshot.index, segmentsRemoved, durationMs },
      'node: checkpoint written',
    );
    return { index: snapshot.index, segmentsRemoved, durationUs: Math.round(durationMs * 1000) };
  }

  /**
   * A snapshot that could not be written for lack of space leaves everything as it was (the
   * WAL still holds every record): refuse and back off. Any other failure leaves the directory
   * in an unknown state: the node stops.
   */
  private checkpointFailed(err: unknown): TallyError {
    rethrowIfAssertion(err);
    const message = (err as Error).message;
    if (isErrno(err, 'ENOSPC')) {
      this.checkpointNotBeforeMs = this.opts.clock.monotonicMs() + checkpointRetryMs;
      return new NoSpaceError(`node: no space to write a checkpoint: ${message}`, { cause: err });
    }
    const fatal = new StorageFatalError(`node: checkpoint failed: ${message}`, { cause: err });
    this.opts.onFatal(fatal);
    return fatal;
  }

  updateWalGauges(): void {
    this.gaugedSegments = this.wal.segmentCount;
    this.opts.metrics.walBytes.set(this.wal.diskBytes);
    this.opts.metrics.walSegments.set(this.wal.segmentCount);
  }

  async close(): Promise<void> {
    await this.checkpointRunning?.catch(() => undefined);
    await this.wal.close().catch(() => undefined);
  }
}

function applyRecord(state: CounterState, record: WalRecord): void {
  if (record.type === RecordType.allocate)
    state.apply(record.namespace, record.first, record.count);
  else if (record.skipAhead > 0) state.skipAhead(record.skipAhead);
}
