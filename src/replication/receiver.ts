/**
 * The standby side of replication. One ReceiverSession per stream from a primary; the
 * Receiver keeps at most one active (a newer Hello that is accepted ends the older session).
 *
 * Every check happens before the log is touched: a message from a lower epoch, a gap, a
 * record that fails its CRC, an oversize batch, or a message out of protocol ends the session
 * with a status and a log line, and the standby's log stays as it was. Messages of a session
 * are handled one at a time, in order, under the log's exclusive section (which promotion
 * also takes), so a promotion never interleaves with an append.
 */
import type { Logger } from 'pino';
import { assert, rethrowIfAssertion } from '../core/assert';
import {
  InvalidArgumentError,
  ProtocolError,
  ReplicationAbortedError,
  StaleEpochError,
  TallyError,
  TooLargeError,
} from '../core/errors';
import {
  idMax,
  namespacePattern,
  namespacesMax,
  receiverQueueMax,
  replicationMessageBytesMax,
} from '../core/limits';
import { readU64 } from '../wal/record';
import { verifyBatch } from '../wal/replication-io';
import {
  protocolVersion,
  type Append,
  type Channel,
  type ChannelEvents,
  type Hello,
  type InstallSnapshot,
  type LogShape,
  type ToPrimary,
  type ToStandby,
  type TransferSnapshot,
} from './protocol';

/** What the receiver needs from the standby node's storage. */
export interface ReplicaLog {
  readonly nodeId: string;
  /** The last index in the log (0: none). */
  readonly lastIndex: number;
  /**
   * Durably accepts the epoch the Hello proposes (its identity: number, primary id, nonce),
   * or throws StaleEpochError / WrongRoleError.
   */
  acceptEpoch(hello: Hello): Promise<void>;
  /** True while the Hello's epoch is still the identity this node holds. */
  holdsEpoch(hello: Hello): boolean;
  /**
   * Every record up to here is known to be acknowledged (the snapshot, and what the primary
   * said it acknowledged): log matching may never cut or replace it.
   */
  acknowledgedFloor(): number;
  /**
   * Every record up to here came from another primary and was confirmed durable to it (see
   * HelloReply.confirmedFloor): the primary decides whether it may cut them.
   */
  confirmedFloor(): number;
  /** The floor this log's unseen namespaces start above (raised only by forced promotions). */
  idFloor(): number;
  shape(): LogShape;
  /** Epoch of the record at `index` (0 for index 0, the snapshot's at the snapshot index). */
  epochAt(index: number): number | null;
  /** Writes verified records (indexes lastIndex+1 ..), fdatasyncs, applies them. */
  append(records: Buffer, count: number): Promise<void>;
  /** Durably removes every record after `index` and rebuilds the counters without them. */
  truncateAfter(index: number): Promise<void>;
  /** Replaces log and counters with a snapshot at its index (the WAL restarts after it). */
  installSnapshot(snapshot: TransferSnapshot): Promise<void>;
  /**
   * The primary's tail and acknowledged index as of the last message: for lag, the
   * catching-up flag and how far the standby may checkpoint.
   */
  noteProgress(primaryLastIndex: number, commitIndex: number): Promise<void>;
  /** Runs fn with no other log operation (another session, a promotion) in between. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

export interface ReceiverMetrics {
  rejected(reason: string): void;
}

export class Receiver {
  private active: ReceiverSession | null = null;
  private readonly sessions = new Set<ReceiverSession>();

  constructor(
    readonly log: ReplicaLog,
    readonly logger: Logger,
    readonly metrics: ReceiverMetrics,
  ) {}

  /** A new stream from a primary: returns the handlers for its messages. */
  open(channel: Channel<ToPrimary>, peer: string): ChannelEvents<ToStandby> {
    const session = new ReceiverSession(this, channel, peer);
    this.sessions.add(session);
    return session;
  }

  /** The accepted session becomes the only one: an older one (same or older primary) ends. */
  activate(session: ReceiverSession): void {
    if (this.active !== null && this.active !== session) {
      this.active.end(new ReplicationAbortedError('replication: superseded by a newer session'));
    }
    this.active = session;
  }

  forget(session: ReceiverSession): void {
    this.sessions.delete(session);
    if (this.active === session) this.active = null;
  }

  /** Ends every session (promotion, shutdown). */
  closeAll(err: TallyError): void {
    for (const session of [...this.sessions]) session.end(err);
  }

  get activeSession(): ReceiverSession | null {
    return this.active;
  }
}

export class ReceiverSession implements ChannelEvents<ToStandby> {
  private readonly queue: ToStandby[] = [];
  private busy = false;
  private ended = false;
  private hello: Hello | null = null;
  /** The highest index this session's InstallSnapshot and Appends have carried (-1: none). */
  private reached = -1;
  private readonly log: ReplicaLog;
  private readonly logger: Logger;

  constructor(
    private readonly receiver: Receiver,
    private readonly channel: Channel<ToPrimary>,
    readonly peer: string,
  ) {
    this.log = receiver.log;
    this.logger = receiver.logger;
  }

  get primaryId(): string | null {
    return this.hello?.primaryId ?? null;
  }

  onMessage(message: ToStandby): void {
    if (this.ended) return;
    if (this.queue.length >= receiverQueueMax) {
      this.fail(new ProtocolError(`replication: more than ${receiverQueueMax} messages queued`));
      return;
    }
    this.queue.push(message);
    if (!this.busy) void this.drain();
  }

  onClose(err: TallyError | null): void {
    if (this.ended) return;
    this.ended = true;
    this.receiver.forget(this);
    this.logger.warn(
      { peer: this.peer, primaryId: this.primaryId, err: err?.message },
      'replication: primary disconnected',
    );
  }

  /** Ends the session from this side with `err` as the stream's status. */
  end(err: TallyError): void {
    if (this.ended) return;
    this.ended = true;
    this.receiver.forget(this);
    this.channel.close(err);
  }

  private fail(err: unknown): void {
    const error =
      err instanceof TallyError ? err : new ProtocolError(`replication: ${String(err)}`);
    this.receiver.metrics.rejected(error.name);
    this.logger.warn(
      { peer: this.peer, primaryId: this.primaryId, err: error.message },
      'replication: refused a message from the primary; session ended',
    );
    this.end(error);
  }

  private async drain(): Promise<void> {
    this.busy = true;
    while (this.queue.length > 0 && !this.ended) {
      const message = this.takeMessage();
      try {
        await this.log.exclusive(() => this.handle(message));
      } catch (err) {
        rethrowIfAssertion(err); // a bug on this side, not the primary's message
        this.fail(err);
      }
    }
    this.busy = false;
  }

  /**
   * The next message; Appends that queued up while the last one was being written, each
   * continuing the one before, are merged into one: one write, one fdatasync, one ack
   * (group commit on the standby).
   */
  private takeMessage(): ToStandby {
    const first = this.queue.shift() as ToStandby;
    if (first.kind !== 'append') return first;
    let merged: Append = first;
    const parts = [first.records];
    let bytes = first.records.length;
    for (;;) {
      const next = this.queue[0];
      if (next?.kind !== 'append' || !continues(merged, next)) break;
      if (bytes + next.records.length > replicationMessageBytesMax) break;
      this.queue.shift();
      parts.push(next.records);
      bytes += next.records.length;
      merged = {
        ...merged,
        recordCount: merged.recordCount + next.recordCount,
        primaryLastIndex: next.primaryLastIndex,
        lastEpoch: next.lastEpoch,
        commitIndex: Math.max(merged.commitIndex, next.commitIndex),
      };
    }
    if (parts.length > 1) merged.records = Buffer.concat(parts, bytes);
    return merged;
  }

  private async handle(message: ToStandby): Promise<void> {
    if (this.ended) return;
    if (message.kind === 'hello') return this.onHello(message);
    const hello = this.hello;
    if (hello === null) throw new ProtocolError('replication: the first message must be Hello');
    if (message.epoch !== hello.epoch) {
      throw new ProtocolError(
        `replication: message for epoch ${message.epoch} in a session of epoch ${hello.epoch}`,
      );
    }
    if (!this.log.holdsEpoch(hello)) {
      throw new StaleEpochError(
        `replication: epoch ${hello.epoch} of ${hello.primaryId} is no longer current here`,
      );
    }
    if (message.kind === 'append') return this.onAppend(message);
    return this.onInstallSnapshot(message);
  }

  private async onHello(hello: Hello): Promise<void> {
    if (this.hello !== null) throw new ProtocolError('replication: Hello sent twice');
    if (hello.protocolVersion !== protocolVersion) {
      throw new ProtocolError(
        `replication: protocol version ${hello.protocolVersion} is not ${protocolVersion}`,
      );
    }
    if (!(hello.epoch >= 1) || hello.primaryId === '') {
      throw new ProtocolError('replication: Hello needs an epoch >= 1 and a primary id');
    }
    if (hello.primaryId === this.log.nodeId) {
      throw new ProtocolError(`replication: node ${hello.primaryId} cannot replicate to itself`);
    }
    await this.log.acceptEpoch(hello);
    this.hello = hello;
    this.receiver.activate(this);
    const shape = this.log.shape();
    this.logger.info(
      { peer: this.peer, primaryId: hello.primaryId, epoch: hello.epoch, ...shapeLog(shape) },
      'replication: primary connected',
    );
    this.channel.send({
      kind: 'helloReply',
      nodeId: this.log.nodeId,
      ...shape,
      acknowledgedFloor: this.log.acknowledgedFloor(),
      idFloor: this.log.idFloor(),
      confirmedFloor: this.log.confirmedFloor(),
    });
  }

  private async onAppend(append: Append): Promise<void> {
    const { records, recordCount, prevIndex, prevEpoch } = append;
    this.reached = Math.max(this.reached, prevIndex + recordCount);
    if (records.length > replicationMessageBytesMax) {
      throw new TooLargeError(
        `replication: batch of ${records.length} bytes exceeds ${replicationMessageBytesMax}`,
      );
    }
    const batch = verifyBatch(records, records.length, prevIndex + 1, prevEpoch);
    if (
      batch.records !== recordCount ||
      batch.lastEpoch > append.epoch ||
      batch.lastEpoch !== append.lastEpoch
    ) {
      throw new ProtocolError(
        `replication: batch holds ${batch.records} records up to epoch ${batch.lastEpoch}, ` +
          `announced ${recordCount} up to epoch ${append.lastEpoch} in epoch ${append.epoch}`,
      );
    }
    const shape = this.log.shape();
    if (prevIndex > shape.lastIndex) {
      throw new ReplicationAbortedError(
        `replication: gap: batch follows index ${prevIndex} but the log ends at ${shape.lastIndex}`,
      );
    }
    const mine = this.log.epochAt(prevIndex);
    if (mine !== prevEpoch) {
      throw new ReplicationAbortedError(
        `replication: log mismatch at index ${prevIndex}: epoch ${String(mine)} here, ${prevEpoch} on the primary`,
      );
    }
    const skip = await this.dropConflicts(records, prevIndex, shape);
    if (skip.offset < records.length) {
      await this.log.append(records.subarray(skip.offset), recordCount - skip.records);
    }
    await this.log.noteProgress(append.primaryLastIndex, append.commitIndex);
    // Only what this batch covers: later records held here may not be the primary's.
    const durableIndex = prevIndex + recordCount;
    if (this.log.lastIndex < durableIndex) {
      assert(
        false,
        `receiver: ack for ${durableIndex} with the log ending at ${this.log.lastIndex}`,
      );
    }
    this.channel.send({ kind: 'ack', durableIndex });
  }

  /**
   * Records this log already holds with the same epoch are skipped (a resent batch); at the
   * first one held with another epoch the log is cut (a suffix the primary never had).
   */
  private async dropConflicts(
    records: Buffer,
    prevIndex: number,
    shape: LogShape,
  ): Promise<{ offset: number; records: number }> {
    let offset = 0;
    let count = 0;
    for (let index = prevIndex + 1; index <= shape.lastIndex && offset < records.length; index++) {
      if (this.log.epochAt(index) !== readU64(records, offset + 8)) {
        if (index - 1 < shape.snapshotIndex) {
          throw new ReplicationAbortedError(
            `replication: log diverges at ${index}, inside the snapshot (index ${shape.snapshotIndex})`,
          );
        }
        this.refuseBelowAcknowledged(index - 1, 'cut the log');
        await this.log.truncateAfter(index - 1);
        return { offset, records: count };
      }
      offset += records.readUInt32LE(offset);
      count++;
    }
    return { offset, records: count };
  }

  /**
   * A primary whose log ends below a record known to be acknowledged here has lost history
   * (an old copy of its data directory): following it would cut acknowledged records, so it is
   * fenced. Unless its history holds a forced skip-ahead this log has not seen (its floor is
   * higher): an operator's forced promotion supersedes what only this node still holds.
   */
  private refuseBelowAcknowledged(index: number, what: string): void {
    const floor = this.log.acknowledgedFloor();
    if (index >= floor) return;
    const hello = this.hello as Hello;
    if (hello.idFloor > this.log.idFloor()) {
      this.logger.warn(
        { index, acknowledgedFloor: floor, primaryFloor: hello.idFloor },
        `replication: ${what} below acknowledged records: the primary's history was forced past them (skip-ahead)`,
      );
      return;
    }
    throw new StaleEpochError(
      `replication: refusing to ${what} at index ${index}: records up to ${floor} are acknowledged here, so the primary's log lacks acknowledged records (lost or restored from an old copy)`,
    );
  }

  private async onInstallSnapshot(message: InstallSnapshot): Promise<void> {
    if (message.counters.length > namespacesMax) {
      throw new TooLargeError(`replication: snapshot with ${message.counters.length} namespaces`);
    }
    for (const [name, lastId] of message.counters) {
      if (
        !namespacePattern.test(name) ||
        !Number.isSafeInteger(lastId) ||
        lastId < 0 ||
        lastId > idMax
      ) {
        throw new InvalidArgumentError(`replication: snapshot entry ${name}=${lastId} is invalid`);
      }
    }
    if (!Number.isSafeInteger(message.index) || message.index < 0) {
      throw new ProtocolError(`replication: snapshot index ${message.index} is invalid`);
    }
    if (!Number.isSafeInteger(message.floor) || message.floor < 0 || message.floor > idMax) {
      throw new InvalidArgumentError(`replication: snapshot floor ${message.floor} is invalid`);
    }
    if (message.index <= this.reached) {
      // A snapshot older than what this session already sent: a copy delivered twice or late.
      // (A primary sends at most one, right after the Hello.) Installing it would throw away
      // the records after it, acknowledged ones among them, and refusing it would fence a
      // primary that did nothing wrong: it is dropped, unanswered (acks only go forward).
      // Found by the simulator: a duplicated InstallSnapshot stopped the cluster.
      this.logger.warn(
        { peer: this.peer, index: message.index, reached: this.reached },
        'replication: ignoring a snapshot older than what this session already sent (a duplicate)',
      );
      return;
    }
    this.reached = message.index;
    this.refuseBelowAcknowledged(message.index, 'replace the log with a snapshot');
    this.logger.warn(
      { peer: this.peer, index: message.index, namespaces: message.counters.length },
      'replication: installing a snapshot from the primary (catch-up)',
    );
    await this.log.installSnapshot(message);
    this.channel.send({ kind: 'ack', durableIndex: message.index });
  }
}

/** `next` starts right after `prev` ends, in the same epoch's session. */
function continues(prev: Append, next: Append): boolean {
  return (
    next.epoch === prev.epoch &&
    next.prevIndex === prev.prevIndex + prev.recordCount &&
    next.prevEpoch === prev.lastEpoch
  );
}

function shapeLog(shape: LogShape): Record<string, number> {
  return {
    firstIndex: shape.firstIndex,
    lastIndex: shape.lastIndex,
    snapshotIndex: shape.snapshotIndex,
    epochs: shape.epochs.length,
  };
}
