/**
 * A counter node (standalone for now): data dir + WAL + counter state + group commit.
 * Start: lock dir → meta → snapshot → replay WAL → new epoch (meta, then an epoch-start
 * record) → serve. A node never writes in an epoch it used before a restart.
 */
import * as path from 'node:path';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../core/clock';
import {
  ConfigError,
  NoSpaceError,
  StorageFatalError,
  UnavailableError,
  isErrno,
  type TallyError,
} from '../core/errors';
import {
  checkpointBytesDefault,
  checkpointRecordsDefault,
  queuedRequestsMaxDefault,
  segmentSizeBytesDefault,
  segmentSizeBytesMax,
  segmentSizeBytesMin,
} from '../core/limits';
import type { Metrics } from '../core/metrics';
import { CounterState, validateAllocation } from '../state/counters';
import { RecordType, encodeEpochStart, type WalRecord } from '../wal/record';
import { readSnapshot, writeSnapshot } from '../wal/snapshot';
import { NodeStorage, type Storage } from '../wal/storage';
import { Wal } from '../wal/wal';
import { Committer } from './committer';
import { loadMeta, lockDataDir, writeMeta, type DirLock, type Meta } from './data-dir';
import { walDirName } from '../wal/segment-files';
import type { AllocateCallback, CheckpointInfo, CounterNode, NodeState, NodeStatus } from './types';

export interface NodeOptions {
  id: string;
  dataDir: string;
  logger: Logger;
  metrics: Metrics;
  segmentSizeBytes?: number;
  checkpointRecords?: number;
  checkpointBytes?: number;
  queuedRequestsMax?: number;
  /** Test seams: a fault-injecting disk, a fake clock; `lock: false` skips the OS lock. */
  storage?: Storage;
  clock?: Clock;
  lock?: boolean;
}

const batchBytesMax = 1024 * 1024;
/** After a checkpoint failed for lack of space, the next automatic one waits this long. */
const checkpointRetryMs = 10_000;

export async function openNode(opts: NodeOptions): Promise<CounterNode> {
  const segmentSizeBytes = opts.segmentSizeBytes ?? segmentSizeBytesDefault;
  const sizeOk = Number.isSafeInteger(segmentSizeBytes) && segmentSizeBytes >= segmentSizeBytesMin;
  if (!sizeOk || segmentSizeBytes > segmentSizeBytesMax) {
    throw new ConfigError(
      `node: segment size must be an integer in ${segmentSizeBytesMin}..${segmentSizeBytesMax} bytes`,
    );
  }
  const lock = opts.lock === false ? null : lockDataDir(opts.dataDir);
  try {
    return await TallyNode.start(opts, segmentSizeBytes, lock);
  } catch (err) {
    lock?.close();
    throw err;
  }
}

class TallyNode implements CounterNode {
  private stateValue: NodeState = 'starting';
  private readonly log: Logger;
  private committer!: Committer;
  private appliedIndex = 0;
  private checkpointIndex = 0;
  private checkpointUnixMs = 0;
  private bytesSinceCheckpoint = 0;
  private checkpointRunning: Promise<CheckpointInfo> | null = null;
  /** After a checkpoint failed for lack of space, automatic ones wait until then. */
  private checkpointNotBeforeMs = 0;
  /** Segment count last published to the WAL gauges. */
  private gaugedSegments = 0;
  private resolveFailed!: (err: Error) => void;
  readonly failed: Promise<Error>;

  private constructor(
    private readonly opts: NodeOptions,
    private readonly storage: Storage,
    private readonly clock: Clock,
    private readonly state: CounterState,
    private readonly lock: DirLock | null,
    private meta: Meta,
    private wal: Wal,
    private readonly segmentSizeBytes: number,
  ) {
    this.log = opts.logger.child({ module: 'node' });
    this.failed = new Promise((resolve) => (this.resolveFailed = resolve));
  }

  static async start(
    opts: NodeOptions,
    segmentSizeBytes: number,
    lock: DirLock | null,
  ): Promise<TallyNode> {
    const storage = opts.storage ?? new NodeStorage();
    const clock = opts.clock ?? systemClock;
    const log = opts.logger.child({ module: 'node' });
    const started = clock.monotonicMs();
    await storage.mkdir(opts.dataDir);
    const meta = await loadMeta(storage, opts.dataDir, opts.id);
    const state = new CounterState();
    const snapshot = await readSnapshot(storage, opts.dataDir);
    if (snapshot) state.load(snapshot.counters);
    const fromIndex = snapshot?.index ?? 0;
    let lastEpoch = Math.max(meta.epoch, snapshot?.epoch ?? 0);
    const { wal, recovery } = await Wal.open(
      {
        storage,
        dir: path.join(opts.dataDir, walDirName),
        segmentSizeBytes,
        logger: opts.logger.child({ module: 'wal' }),
        clock,
        requireExisting: meta.epoch > 0 || snapshot !== null,
      },
      fromIndex,
      (record: WalRecord) => {
        if (record.type === RecordType.allocate)
          state.apply(record.namespace, record.first, record.count);
      },
    );
    lastEpoch = Math.max(lastEpoch, recovery.lastEpoch);
    const recoverySeconds = (clock.monotonicMs() - started) / 1000;
    opts.metrics.recoveryDurationSeconds.set(recoverySeconds);
    opts.metrics.recoveryRecords.set(recovery.replayed);
    log.info(
      {
        snapshotIndex: fromIndex,
        replayed: recovery.replayed,
        lastIndex: recovery.lastIndex,
        recoverySeconds,
        tornTail: recovery.tornTail,
      },
      'node: recovered',
    );
    const node = new TallyNode(opts, storage, clock, state, lock, meta, wal, segmentSizeBytes);
    node.appliedIndex = recovery.lastIndex;
    node.checkpointIndex = fromIndex;
    node.checkpointUnixMs = snapshot?.unixMs ?? 0;
    try {
      await node.beginEpoch(lastEpoch + 1);
    } catch (err) {
      await wal.close().catch(() => undefined);
      throw err;
    }
    return node;
  }

  /** Persists the new epoch, then makes its epoch-start record durable, then serves. */
  private async beginEpoch(epoch: number): Promise<void> {
    this.meta = { ...this.meta, epoch };
    await writeMeta(this.storage, this.opts.dataDir, this.meta);
    const buf = Buffer.alloc(512);
    const index = this.wal.nextIndex;
    const length = encodeEpochStart(buf, 0, epoch, index, this.opts.id);
    await this.wal.append(buf, length, 1);
    this.appliedIndex = index;
    this.committer = new Committer({
      wal: this.wal,
      state: this.state,
      clock: this.clock,
      logger: this.log,
      metrics: this.opts.metrics,
      queuedRequestsMax: this.opts.queuedRequestsMax ?? queuedRequestsMaxDefault,
      batchBytesMax: Math.min(batchBytesMax, this.segmentSizeBytes),
      epoch,
      onBatchDurable: (lastIndex, bytes) => this.afterBatch(lastIndex, bytes),
      onFatal: (err) => this.fail(err),
    });
    this.stateValue = 'serving';
    this.updateWalGauges();
    this.log.info({ epoch, index, nodeId: this.opts.id }, 'node: serving');
  }

  allocate(
    namespace: string,
    count: number,
    deadlineUnixMs: number | undefined,
    cb: AllocateCallback,
  ): void {
    try {
      validateAllocation(namespace, count);
    } catch (err) {
      return cb(err as TallyError);
    }
    if (this.stateValue !== 'serving') {
      return cb(new UnavailableError(`node: not serving (${this.stateValue})`));
    }
    this.committer.submit(namespace, count, deadlineUnixMs, cb);
  }

  private afterBatch(lastIndex: number, bytes: number): void {
    this.appliedIndex = lastIndex;
    if (this.wal.segmentCount !== this.gaugedSegments) this.updateWalGauges(); // a rollover
    this.bytesSinceCheckpoint += bytes;
    const records = lastIndex - this.checkpointIndex;
    const due =
      records >= (this.opts.checkpointRecords ?? checkpointRecordsDefault) ||
      this.bytesSinceCheckpoint >= (this.opts.checkpointBytes ?? checkpointBytesDefault);
    const backedOff = this.clock.monotonicMs() < this.checkpointNotBeforeMs;
    if (due && !backedOff && this.checkpointRunning === null && this.stateValue === 'serving') {
      this.checkpoint().catch((err: unknown) =>
        this.log.error({ err: (err as Error).message }, 'node: automatic checkpoint failed'),
      );
    }
  }

  /** Snapshot of the durable state at a batch boundary, then compaction below it. */
  checkpoint(): Promise<CheckpointInfo> {
    if (this.stateValue !== 'serving' && this.stateValue !== 'draining') {
      return Promise.reject(
        new UnavailableError(`node: cannot checkpoint while ${this.stateValue}`),
      );
    }
    this.checkpointRunning ??= this.runCheckpoint().finally(() => (this.checkpointRunning = null));
    return this.checkpointRunning;
  }

  private async runCheckpoint(): Promise<CheckpointInfo> {
    const started = this.clock.monotonicMs();
    // Taken synchronously so counters and index describe the same moment.
    const snapshot = {
      index: this.appliedIndex,
      epoch: this.meta.epoch,
      unixMs: this.clock.nowUnixMs(),
      counters: this.state.durableEntries(),
    };
    const bytesAtStart = this.bytesSinceCheckpoint;
    try {
      await writeSnapshot(this.storage, this.opts.dataDir, snapshot);
    } catch (err) {
      throw this.checkpointFailed(err);
    }
    this.checkpointIndex = snapshot.index;
    this.checkpointUnixMs = snapshot.unixMs;
    this.bytesSinceCheckpoint -= bytesAtStart;
    let segmentsRemoved: number;
    try {
      segmentsRemoved = await this.wal.compact(snapshot.index);
    } catch (err) {
      throw this.checkpointFailed(err);
    }
    this.updateWalGauges();
    const durationMs = this.clock.monotonicMs() - started;
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
    const message = (err as Error).message;
    if (isErrno(err, 'ENOSPC')) {
      this.checkpointNotBeforeMs = this.clock.monotonicMs() + checkpointRetryMs;
      return new NoSpaceError(`node: no space to write a checkpoint: ${message}`, { cause: err });
    }
    const fatal = new StorageFatalError(`node: checkpoint failed: ${message}`, { cause: err });
    this.fail(fatal);
    return fatal;
  }

  private updateWalGauges(): void {
    this.gaugedSegments = this.wal.segmentCount;
    this.opts.metrics.walBytes.set(this.wal.diskBytes);
    this.opts.metrics.walSegments.set(this.wal.segmentCount);
  }

  status(): NodeStatus {
    return {
      nodeId: this.opts.id,
      role: this.meta.role,
      state: this.stateValue,
      epoch: this.meta.epoch,
      lastIndex: this.appliedIndex,
      namespaces: this.state.durableEntries().map(([name, lastId]) => ({ name, lastId })),
      walBytes: this.wal.diskBytes,
      walSegments: this.wal.segmentCount,
      checkpointIndex: this.checkpointIndex,
      checkpointUnixMs: this.checkpointUnixMs,
      dataDir: this.opts.dataDir,
    };
  }

  private fail(err: TallyError): void {
    if (this.stateValue === 'failed') return;
    this.stateValue = 'failed';
    this.log.fatal({ err: err.message }, 'node: storage failure; stopping (never retrying fsync)');
    this.committer.halt(
      new UnavailableError('node: storage failed; this node has stopped', { cause: err }),
    );
    this.resolveFailed(
      err instanceof StorageFatalError ? err : new StorageFatalError(err.message, { cause: err }),
    );
  }

  async close(): Promise<void> {
    if (this.stateValue === 'closed') return;
    const wasFailed = this.stateValue === 'failed';
    if (!wasFailed) this.stateValue = 'draining';
    this.committer.stop(new UnavailableError('node: draining'));
    await this.committer.whenIdle();
    await this.checkpointRunning?.catch(() => undefined);
    await this.wal.close().catch(() => undefined);
    this.lock?.close();
    this.stateValue = 'closed';
    this.log.info({ lastIndex: this.appliedIndex }, 'node: closed');
  }
}
