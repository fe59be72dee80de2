/**
 * The node's side of replication: what the standby's Receiver may do to the log (ReplicaLog),
 * what the primary's Sender may read from it (PrimaryLog), and the sender's metrics.
 */
import { rethrowIfAssertion } from '../core/assert';
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
import type { Hello, LogShape, TransferSnapshot } from '../replication/protocol';
import { shortId } from '../core/ids';
import type { ReplicaLog } from '../replication/receiver';
import type { PrimaryLog, SenderMetrics } from '../replication/sender';
import type { Meta } from './data-dir';
import type { MetaStore } from './meta-store';
import type { LogStore } from './log-store';
import type { ReplicationStatus } from './types';
import { planted } from '../core/planted-bugs';

/** The parts of the node a standby's log operations touch. */
export interface ReplicaHost {
  readonly opts: { id: string; metrics: Metrics; logger: Logger };
  readonly store: LogStore;
  /** The node's one meta writer. */
  readonly metaStore: MetaStore;
  /** A write or fsync failed: the node stops (never retrying on the same file). */
  fail(err: TallyError): void;
}

export class ReplicaLogAdapter implements ReplicaLog {
  private readonly serial = new Serial();
  /** The primary's last index as of its latest message. */
  private primaryLastIndex = 0;
  /** The highest index a primary said it acknowledged (since this standby started). */
  private acknowledged = 0;

  constructor(private readonly host: ReplicaHost) {}

  get nodeId(): string {
    return this.host.opts.id;
  }

  get lastIndex(): number {
    return this.host.store.lastIndex;
  }

  private get meta(): Readonly<Meta> {
    return this.host.metaStore.current;
  }

  /**
   * An epoch's identity is (number, primary id, nonce). Accepted: a higher number; the same
   * identity again (a reconnect); the same number and primary with another nonce only while
   * this log holds no record of that epoch (the earlier proposal wrote nothing here: its
   * primary crashed before persisting it). Refused: anything else, and a primary whose data
   * directory is not the one this standby followed (it was replaced: it holds no history).
   */
  async acceptEpoch(hello: Hello): Promise<void> {
    const before = this.meta.epoch;
    const meta = await this.host.metaStore.update((m) => this.epochChange(m, hello));
    if (meta.epoch === before && hello.epoch === before) return;
    this.host.opts.metrics.epoch.set(meta.epoch);
    this.host.opts.logger.info(
      { epoch: hello.epoch, primaryId: hello.primaryId },
      'node: standby accepted a new epoch',
    );
  }

  private epochChange(m: Readonly<Meta>, hello: Hello): Partial<Meta> | null {
    if (m.role !== 'standby') {
      throw new WrongRoleError(
        `node: ${this.nodeId} is ${m.role} (epoch ${m.epoch}), not a standby`,
      );
    }
    if (hello.clusterId !== '' && (m.clusterId ?? '') !== '' && hello.clusterId !== m.clusterId) {
      throw new WrongRoleError(
        `node: ${this.nodeId} belongs to cluster ${shortId(m.clusterId ?? '')}, primary ${hello.primaryId} to cluster ${shortId(hello.clusterId)}`,
      );
    }
    const held = m.epochPrimary ?? '';
    const followed = m.primaryIncarnation ?? '';
    // A forced promotion (its floor above this log's) may run on a new directory: the
    // operator chose it over the history this standby followed.
    const forced = hello.idFloor > this.host.store.state.floor;
    const replaced =
      followed !== '' &&
      hello.primaryIncarnation !== followed &&
      !planted('skip-incarnation-check');
    if (held === hello.primaryId && replaced && !forced) {
      throw new StaleEpochError(
        `node: ${this.nodeId} followed ${held} on data directory ${shortId(followed)}; ${held} now runs on ${shortId(hello.primaryIncarnation)} (wiped or replaced): it holds none of the history and must not be primary`,
      );
    }
    const accepted: Partial<Meta> = {
      epoch: hello.epoch,
      epochPrimary: hello.primaryId,
      epochNonce: hello.epochNonce,
      primaryIncarnation: hello.primaryIncarnation || undefined,
      primaryAddress: hello.primaryAddress,
      clusterId: m.clusterId || hello.clusterId || undefined,
    };
    if (hello.epoch > m.epoch) return accepted;
    if (hello.epoch === m.epoch && hello.primaryId === held) {
      if (hello.epochNonce === (m.epochNonce ?? '')) {
        return hello.primaryAddress === (m.primaryAddress ?? '')
          ? null
          : { primaryAddress: hello.primaryAddress };
      }
      if (this.host.store.highestEpoch < hello.epoch) return accepted;
    }
    if (planted('skip-epoch-check')) return accepted;
    throw new StaleEpochError(
      `node: epoch ${hello.epoch} of ${hello.primaryId} is stale: ${this.nodeId} has accepted epoch ${m.epoch} of ${held || 'another primary'}${hello.epoch === m.epoch ? ' (another proposal of that number, which wrote records here)' : ''}`,
    );
  }

  holdsEpoch(hello: Hello): boolean {
    const m = this.meta;
    if (planted('skip-epoch-check')) return m.role === 'standby';
    return (
      m.role === 'standby' &&
      m.epoch === hello.epoch &&
      m.epochPrimary === hello.primaryId &&
      (m.epochNonce ?? '') === hello.epochNonce
    );
  }

  acknowledgedFloor(): number {
    return Math.max(this.acknowledged, this.host.store.checkpointIndex);
  }

  idFloor(): number {
    return this.host.store.state.floor;
  }

  /** The end of the newest epoch in this log that this node did not lead (0: none). */
  confirmedFloor(): number {
    const { store } = this.host;
    const led = this.meta.led ?? [];
    const epochs = store.epochs();
    for (let k = epochs.length - 1; k >= 0; k--) {
      const start = epochs[k] as { epoch: number; index: number };
      if (led.includes(start.epoch)) continue;
      const next = epochs[k + 1];
      return next === undefined ? store.lastIndex : next.index - 1;
    }
    return 0;
  }

  shape(): LogShape {
    const { store } = this.host;
    return {
      firstIndex: store.wal.firstIndex,
      lastIndex: store.lastIndex,
      epochs: store.epochs().slice(-helloEpochsMax),
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
      rethrowIfAssertion(err);
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
  async installSnapshot(snapshot: TransferSnapshot): Promise<void> {
    await this.host.metaStore.set({ snapshotInstall: true, catchingUp: true });
    await this.fatalOnError(() => this.host.store.installSnapshot(snapshot));
    await this.host.metaStore.set({ snapshotInstall: undefined });
    this.host.opts.metrics.replicationSnapshotInstalls.inc();
  }

  async noteProgress(primaryLastIndex: number, commitIndex: number): Promise<void> {
    this.primaryLastIndex = primaryLastIndex;
    const acknowledged = Math.min(commitIndex, this.host.store.lastIndex);
    this.acknowledged = Math.max(this.acknowledged, acknowledged);
    this.host.store.noteAcknowledged(acknowledged);
    if (this.meta.catchingUp && this.host.store.lastIndex >= primaryLastIndex) {
      // At a primary's tail: this log holds everything that primary has (a tail cut at
      // recovery included, matched and sent again).
      await this.host.metaStore.set({ catchingUp: undefined, tailCut: undefined });
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
      peer: this.meta.primaryAddress ?? '',
      state: connected ? 'connected' : 'disconnected',
      ackIndex: lastIndex,
      lagRecords: Math.max(0, this.primaryLastIndex - lastIndex),
      lagSeconds: 0,
      catchingUp: !!this.meta.catchingUp,
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
    epochs: () => store.epochs(),
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
