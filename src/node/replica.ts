/**
 * The node's side of replication: what the standby's Receiver may do to the log (ReplicaLog),
 * what the primary's Sender may read from it (PrimaryLog), and the sender's metrics.
 */
import { Serial } from '../core/serial';
import {
  StaleEpochError,
  StorageFatalError,
  WrongRoleError,
  type TallyError,
} from '../core/errors';
import type { Logger } from 'pino';
import { helloEpochsMax } from '../core/limits';
import type { Metrics } from '../core/metrics';
import type { LogShape } from '../replication/protocol';
import type { ReplicaLog } from '../replication/receiver';
import type { PrimaryLog, SenderMetrics } from '../replication/sender';
import { writeMeta, type Meta } from './data-dir';
import type { Storage } from '../wal/storage';
import type { LogStore } from './log-store';
import type { ReplicationStatus } from './types';

/** The parts of the node a standby's log operations touch. */
export interface ReplicaHost {
  readonly opts: { id: string; dataDir: string; metrics: Metrics; logger: Logger };
  readonly storage: Storage;
  readonly store: LogStore;
  meta: Meta;
  /** A write or fsync failed: the node stops (never retrying on the same file). */
  fail(err: TallyError): void;
}

export class ReplicaLogAdapter implements ReplicaLog {
  private readonly serial = new Serial();
  /** The primary's last index as of its latest message. */
  private primaryLastIndex = 0;

  constructor(private readonly host: ReplicaHost) {}

  get nodeId(): string {
    return this.host.opts.id;
  }

  /** Durable first, then in memory: a failed write leaves the node as it was. */
  private async saveMeta(changes: Partial<Meta>): Promise<void> {
    const meta = { ...this.host.meta, ...changes };
    await writeMeta(this.host.storage, this.host.opts.dataDir, meta);
    this.host.meta = meta;
  }

  async acceptEpoch(epoch: number, primaryId: string, primaryAddress: string): Promise<void> {
    const meta = this.host.meta;
    if (meta.role !== 'standby') {
      throw new WrongRoleError(
        `node: ${this.nodeId} is ${meta.role} (epoch ${meta.epoch}), not a standby`,
      );
    }
    const held = meta.epochPrimary ?? '';
    if (epoch > meta.epoch) {
      await this.saveMeta({ epoch, epochPrimary: primaryId, primaryAddress });
      this.host.opts.metrics.epoch.set(epoch);
      this.host.opts.logger.info({ epoch, primaryId }, 'node: standby accepted a new epoch');
      return;
    }
    if (epoch === meta.epoch && primaryId === held) {
      if (primaryAddress !== (meta.primaryAddress ?? '')) await this.saveMeta({ primaryAddress });
      return;
    }
    throw new StaleEpochError(
      `node: epoch ${epoch} of ${primaryId} is stale: ${this.nodeId} has accepted epoch ${meta.epoch} of ${held || 'another primary'}`,
    );
  }

  holdsEpoch(epoch: number, primaryId: string): boolean {
    const meta = this.host.meta;
    return meta.role === 'standby' && meta.epoch === epoch && meta.epochPrimary === primaryId;
  }

  shape(): LogShape {
    const { store } = this.host;
    return {
      firstIndex: store.wal.firstIndex,
      lastIndex: store.lastIndex,
      epochs: store.wal.epochs().slice(-helloEpochsMax),
      snapshotIndex: store.checkpointIndex,
      snapshotEpoch: store.snapshotEpoch,
    };
  }

  epochAt(index: number): number | null {
    return this.host.store.epochAt(index);
  }

  async append(records: Buffer, count: number): Promise<void> {
    try {
      await this.host.store.appendReceived(records, count);
    } catch (err) {
      // A full disk refuses this batch (the primary retries); anything else stops the node.
      if (err instanceof StorageFatalError) this.host.fail(err);
      throw err;
    }
  }

  async truncateAfter(index: number): Promise<void> {
    const removed = await this.fatalOnError(() => this.host.store.truncateAfter(index));
    this.host.opts.metrics.replicationTruncatedRecords.inc(removed);
  }

  /** Truncation and snapshot install replace files and reopen the WAL: a failure halfway is fatal. */
  private async fatalOnError<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const fatal =
        err instanceof StorageFatalError
          ? err
          : new StorageFatalError(`node: log rewrite failed: ${(err as Error).message}`, {
              cause: err,
            });
      this.host.fail(fatal);
      throw fatal;
    }
  }

  /**
   * Crash-safe: the meta flag goes first, so a crash halfway leaves a directory that start()
   * discards (and the primary sends the snapshot again); the node counts as catching up.
   */
  async installSnapshot(
    index: number,
    indexEpoch: number,
    counters: Array<[string, number]>,
  ): Promise<void> {
    await this.saveMeta({ snapshotInstall: true, catchingUp: true });
    await this.fatalOnError(() => this.host.store.installSnapshot(index, indexEpoch, counters));
    await this.saveMeta({ snapshotInstall: undefined });
    this.host.opts.metrics.replicationSnapshotInstalls.inc();
  }

  async noteProgress(primaryLastIndex: number, commitIndex: number): Promise<void> {
    this.primaryLastIndex = primaryLastIndex;
    this.host.store.noteAcknowledged(Math.min(commitIndex, this.host.store.lastIndex));
    if (this.host.meta.catchingUp && this.host.store.lastIndex >= primaryLastIndex) {
      await this.saveMeta({ catchingUp: undefined });
      this.host.opts.logger.info(
        { lastIndex: this.host.store.lastIndex },
        'replication: standby reached the primary tail; no longer catching up',
      );
    }
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial.run(fn);
  }

  status(connected: boolean): ReplicationStatus {
    const lastIndex = this.host.store.lastIndex;
    return {
      peer: this.host.meta.primaryAddress ?? '',
      state: connected ? 'connected' : 'disconnected',
      ackIndex: lastIndex,
      lagRecords: Math.max(0, this.primaryLastIndex - lastIndex),
      lagSeconds: 0,
      catchingUp: !!this.host.meta.catchingUp,
    };
  }
}

export function primaryLogOf(store: LogStore): PrimaryLog {
  return {
    get durableNext() {
      return store.wal.nextIndex;
    },
    get firstIndex() {
      return store.wal.firstIndex;
    },
    epochs: () => store.wal.epochs(),
    epochAt: (index) => store.epochAt(index),
    readFrom: (index, maxBytes) => store.wal.readFrom(index, maxBytes),
    snapshot: () => store.snapshotForTransfer(),
  };
}

export function senderMetricsOf(metrics: Metrics): SenderMetrics {
  return {
    ackSeconds: (seconds) => metrics.replicationAckSeconds.observe(seconds),
    batchBytes: (bytes) => metrics.replicationBatchBytes.observe(bytes),
    reconnected: () => metrics.replicationReconnects.inc(),
    catchUpRecords: (records) => metrics.replicationCatchUpRecords.inc(records),
  };
}
