/**
 * The primary side of replication: one Sender per primary, one session (stream) at a time.
 *
 *   connecting → handshaking (Hello; the standby accepts the epoch and describes its log)
 *   → catching-up (log matching picks the first record to send; a snapshot first if the
 *     standby needs records that were compacted away; then the WAL from there, at most
 *     catchUpInFlightMax Appends unacknowledged)
 *   → streaming (each group-commit batch is sent just before it is written locally).
 * Any error ends the session; the sender reconnects with jittered backoff and starts again
 * with Hello. A StaleEpochError (the standby accepted a newer epoch) fences it for good.
 *
 * Acknowledgements are cumulative (the standby's last fsynced index), so a lost, repeated or
 * reordered ack never moves `ackedIndex` backwards. Batches handed over by the committer are
 * retained until they are durable locally (after that the WAL has them for a resend).
 */
import type { Logger } from 'pino';
import type { Clock, Random, TimerHandle } from '../core/clock';
import { assert, rethrowIfAssertion } from '../core/assert';
import { ProtocolError, StaleEpochError, type TallyError } from '../core/errors';
import { catchUpChunkBytes, catchUpInFlightMax } from '../core/limits';
import { readU64 } from '../wal/record';
import { agreedIndex, matchIndex } from './match';
import {
  protocolVersion,
  type Channel,
  type Dialer,
  type EpochStart,
  type HelloReply,
  type ToPrimary,
  type ToStandby,
  type TransferSnapshot,
} from './protocol';

/** What the sender needs from the primary's log. */
export interface PrimaryLog {
  /** Index after the last locally durable record. */
  readonly durableNext: number;
  /** First index still in the local WAL (the ones below were compacted into the snapshot). */
  readonly firstIndex: number;
  /**
   * Where each epoch of the log began, ascending: those of the WAL, and below it those kept
   * with the snapshot (the first may be clamped to where the node's knowledge starts).
   */
  epochs(): EpochStart[];
  /** Epoch of a durable record (0 for index 0, the snapshot's at its index), else null. */
  epochAt(index: number): number | null;
  readFrom(index: number, maxBytes: number): Promise<{ buf: Buffer; records: number } | null>;
  /** The newest snapshot (index 0 and no counters when the WAL still starts at 1). */
  snapshot(): Promise<TransferSnapshot>;
}

export interface Batch {
  firstIndex: number;
  count: number;
  bytes: Buffer;
}

export interface SenderMetrics {
  ackSeconds(seconds: number): void;
  batchBytes(bytes: number): void;
  reconnected(): void;
  catchUpRecords(records: number): void;
}

export interface SenderOptions {
  dialer: Dialer;
  log: PrimaryLog;
  epoch: number;
  /** With epoch and primaryId, this epoch's identity (see Hello.epochNonce). */
  epochNonce: string;
  primaryId: string;
  primaryAddress: string;
  /** The primary's cluster ('' when none) and data directory. */
  clusterId: string;
  primaryIncarnation: string;
  /**
   * Every record up to here has been acknowledged to clients (never truncated): the standby
   * may checkpoint up to it. 0 when unknown.
   */
  commitIndex(): number;
  /** The floor this primary's unseen namespaces start above (its forced skip-aheads). */
  idFloor(): number;
  logger: Logger;
  /** Every timer and clock read of the sender (the ack watchdog, reconnects, ack ages). */
  clock: Clock;
  /** The reconnect backoff's jitter. */
  random: Random;
  metrics: SenderMetrics;
  /** No ack (or Hello reply) for this long ends the session. */
  ackTimeoutMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Every advance of ackedIndex. */
  onAck(index: number): void;
  /** The first time a standby accepted the epoch. */
  onAccepted(): void;
  /**
   * Must this primary keep every record the standby confirmed to a primary (true while the
   * standby is in the in-sync set, or this log may have lost records)? Then a standby holding
   * such records past this log fences this primary instead of having them cut. Default true.
   */
  keepConfirmed?: () => boolean;
  /** The standby holds a newer epoch: this primary must stop acknowledging. */
  onFenced(err: StaleEpochError): void;
}

/** While the standby stays unreachable, every this-many failed sessions log a warning. */
const reconnectWarnEvery = 60;
/** Failed first attempts (~5 s at the reconnect backoff) before a standby never seen is news. */
const quietStartAttempts = 10;

export type SenderState =
  'connecting' | 'handshaking' | 'catching-up' | 'streaming' | 'fenced' | 'stopped';

interface Sent {
  lastIndex: number;
  sentAtMs: number;
}

export class Sender {
  private stateValue: SenderState = 'connecting';
  private session = 0;
  private channel: Channel<ToStandby> | null = null;
  private acked = 0;
  private accepted = false;
  /** Next index to send in this session, and the epoch of the record before it. */
  private nextSend = 1;
  private prevEpoch = 0;
  private readonly retained: Batch[] = [];
  private lastOffered = 0;
  private sent: Sent[] = [];
  /** The session whose pump() loop is running (one per session; a stale loop exits itself). */
  private pumping: number | null = null;
  private backoffMs: number;
  private reconnectTimer: TimerHandle | null = null;
  private readonly watchdog: TimerHandle;
  private standbyLastIndex = 0;
  private catchUpTarget = 0;
  private standbyIdValue = '';
  /** Sessions ended since the standby last acknowledged anything. */
  private failedAttempts = 0;
  /** A standby answered a Hello at least once (before that, failures are a normal start). */
  private answered = false;
  private readonly log: Logger;

  constructor(private readonly opts: SenderOptions) {
    this.backoffMs = opts.reconnectMinMs ?? 50;
    this.log = opts.logger.child({ standby: opts.dialer.target });
    const ackTimeoutMs = opts.ackTimeoutMs ?? 3000;
    this.watchdog = opts.clock.setInterval(() => this.checkTimeout(ackTimeoutMs), ackTimeoutMs / 4);
    this.watchdog.unref();
  }

  get state(): SenderState {
    return this.stateValue;
  }

  /** The standby's node id, from its latest Hello reply ('' before the first). */
  get standbyId(): string {
    return this.standbyIdValue;
  }

  /** Highest index the standby has fsynced (in this epoch's log). */
  get ackedIndex(): number {
    return this.acked;
  }

  /** Unacknowledged records and the age of the oldest unacknowledged send. */
  lag(nowMs: number): { records: number; seconds: number } {
    const oldest = this.sent[0];
    return {
      records: Math.max(0, this.lastOffered - this.acked),
      seconds: oldest === undefined ? 0 : (nowMs - oldest.sentAtMs) / 1000,
    };
  }

  /** Catch-up progress: the standby's index and the index it is catching up to. */
  catchUp(): { standbyIndex: number; targetIndex: number } {
    return {
      standbyIndex: Math.max(this.acked, this.standbyLastIndex),
      targetIndex: this.catchUpTarget,
    };
  }

  start(lastIndex: number): void {
    this.lastOffered = lastIndex;
    this.connect();
  }

  stop(): void {
    if (this.stateValue === 'stopped') return;
    this.stateValue = 'stopped';
    this.opts.clock.clearInterval(this.watchdog);
    if (this.reconnectTimer) this.opts.clock.clearTimeout(this.reconnectTimer);
    this.session++;
    this.channel?.close();
    this.channel = null;
    this.opts.dialer.close?.();
  }

  /** A batch the committer is about to write locally (bytes are the sender's to keep). */
  offer(batch: Batch): void {
    this.retained.push(batch);
    this.lastOffered = batch.firstIndex + batch.count - 1;
    if (this.stateValue === 'streaming') {
      if (batch.firstIndex !== this.nextSend) {
        this.reset(
          new ProtocolError(`replication: batch at ${batch.firstIndex}, expected ${this.nextSend}`),
        );
        return;
      }
      this.sendAppend(batch.bytes, batch.count, this.opts.epoch);
    }
  }

  /** Batches up to lastIndex are in the local WAL: a resend can read them from there. */
  localDurable(lastIndex: number): void {
    while (this.retained.length > 0) {
      const first = this.retained[0] as Batch;
      if (first.firstIndex + first.count - 1 > lastIndex) break;
      this.retained.shift();
    }
  }

  private connect(): void {
    if (this.stateValue === 'stopped' || this.stateValue === 'fenced') return;
    const session = ++this.session;
    this.stateValue = 'handshaking';
    this.sent = [{ lastIndex: 0, sentAtMs: this.opts.clock.monotonicMs() }]; // the Hello
    this.channel = this.opts.dialer.open({
      onMessage: (message) => this.onMessage(session, message),
      onClose: (err) => this.onClose(session, err),
    });
    this.channel.send({
      kind: 'hello',
      protocolVersion,
      primaryId: this.opts.primaryId,
      epoch: this.opts.epoch,
      primaryAddress: this.opts.primaryAddress,
      epochNonce: this.opts.epochNonce,
      clusterId: this.opts.clusterId,
      primaryIncarnation: this.opts.primaryIncarnation,
      idFloor: this.opts.idFloor(),
    });
  }

  private onMessage(session: number, message: ToPrimary): void {
    if (session !== this.session) return;
    try {
      if (message.kind === 'helloReply') this.onHelloReply(message);
      else this.onAck(message.durableIndex);
    } catch (err) {
      rethrowIfAssertion(err); // a bug here or in onAck's callee (the committer): never a reset
      this.reset(err as TallyError);
    }
  }

  private onHelloReply(reply: HelloReply): void {
    if (this.stateValue !== 'handshaking') {
      throw new ProtocolError('replication: unexpected Hello reply');
    }
    this.sent = [];
    this.standbyLastIndex = reply.lastIndex;
    this.standbyIdValue = reply.nodeId;
    this.failedAttempts = 0;
    this.answered = true;
    const shape = {
      lastIndex: this.lastOffered,
      epochs: this.primaryEpochs(),
      epochAt: (index: number) => this.primaryEpochAt(index),
    };
    const match = matchIndex(reply, shape);
    this.log.info(
      {
        standbyId: reply.nodeId,
        standbyLastIndex: reply.lastIndex,
        match,
        primaryLastIndex: this.lastOffered,
      },
      'replication: standby connected',
    );
    // A standby's snapshot holds acknowledged records only, so one that must be reset below it
    // names records this log lacks: agreedIndex, not the match, is what is compared.
    const agreed = agreedIndex(reply, shape) ?? -1;
    const forced = this.opts.idFloor() > reply.idFloor;
    if (agreed < reply.acknowledgedFloor && !forced) {
      // The standby holds acknowledged records this log does not: this primary lost history
      // (an old copy of its directory). It must not begin its epoch, nor cut them.
      throw new StaleEpochError(
        `replication: standby ${reply.nodeId} holds acknowledged records up to ${reply.acknowledgedFloor} that this primary's log does not (the logs agree up to ${agreed < 0 ? 'no known index' : agreed}): this node lost history and must not serve`,
      );
    }
    if (agreed < reply.confirmedFloor && !forced && (this.opts.keepConfirmed?.() ?? true)) {
      // Records a primary sent and the standby confirmed, which this log lacks: lost before
      // this node's own fsync, or by a disk that lost its tail. Either way they may have been
      // acknowledged: the standby, which holds them, must take over; they are never cut.
      throw new StaleEpochError(
        `replication: standby ${reply.nodeId} holds records up to ${reply.confirmedFloor} that it confirmed to a primary and this log lacks (the logs agree up to ${agreed < 0 ? 'no known index' : agreed}): they may have been acknowledged, so this node steps down for the standby instead of cutting them`,
      );
    }
    this.stateValue = 'catching-up';
    this.catchUpTarget = this.lastOffered;
    if (!this.accepted) {
      this.accepted = true;
      this.opts.onAccepted();
    }
    if (match === 'snapshot' || match + 1 < this.opts.log.firstIndex) {
      void this.installSnapshot(this.session);
      return;
    }
    this.advanceAck(match);
    // Records the standby holds past the local tail are resent from memory (it skips them):
    // sending starts at a local batch boundary.
    this.nextSend = Math.min(match + 1, this.opts.log.durableNext);
    this.prevEpoch = this.primaryEpochAt(this.nextSend - 1) ?? 0;
    void this.pump();
  }

  private async installSnapshot(session: number): Promise<void> {
    const snapshot = await this.opts.log.snapshot();
    if (session !== this.session || this.channel === null) return;
    this.log.warn(
      { index: snapshot.index, namespaces: snapshot.counters.length },
      'replication: standby needs compacted records; sending a snapshot',
    );
    this.channel.send({ kind: 'installSnapshot', epoch: this.opts.epoch, ...snapshot });
    this.sent.push({ lastIndex: snapshot.index, sentAtMs: this.opts.clock.monotonicMs() });
    this.nextSend = snapshot.index + 1;
    this.prevEpoch = snapshot.indexEpoch;
    void this.pump();
  }

  private onAck(index: number): void {
    if (index >= this.nextSend) {
      throw new ProtocolError(
        `replication: ack for ${index}, but only ${this.nextSend - 1} was sent`,
      );
    }
    const now = this.opts.clock.monotonicMs();
    while (this.sent.length > 0 && (this.sent[0] as Sent).lastIndex <= index) {
      this.opts.metrics.ackSeconds((now - (this.sent.shift() as Sent).sentAtMs) / 1000);
    }
    this.advanceAck(index);
    // Backoff resets on real progress, not on a handshake that fails right after.
    this.backoffMs = this.opts.reconnectMinMs ?? 50;
    this.failedAttempts = 0;
    if (this.stateValue === 'catching-up') void this.pump();
  }

  private advanceAck(index: number): void {
    if (index <= this.acked) return; // a late or repeated ack: acks only move forward
    if (index > this.lastOffered) {
      assert(false, `sender: ack at ${index} beyond the last record offered (${this.lastOffered})`);
    }
    this.acked = index;
    this.opts.onAck(index);
  }

  /** Sends WAL records from nextSend until the local tail, then switches to streaming. */
  private async pump(): Promise<void> {
    const session = this.session;
    if (this.pumping === session) return;
    this.pumping = session;
    try {
      while (this.stateValue === 'catching-up' && session === this.session) {
        if (this.nextSend >= this.opts.log.durableNext) {
          this.startStreaming();
          break;
        }
        if (this.sent.length >= catchUpInFlightMax) break; // resumed by the next ack
        const read = await this.opts.log.readFrom(this.nextSend, catchUpChunkBytes);
        if (session !== this.session) break;
        if (read === null)
          throw new ProtocolError('replication: records compacted during catch-up');
        this.opts.metrics.catchUpRecords(read.records);
        this.sendAppend(read.buf, read.records, lastEpochOf(read.buf));
      }
    } catch (err) {
      rethrowIfAssertion(err);
      if (session === this.session) this.reset(err as TallyError);
    } finally {
      if (this.pumping === session) this.pumping = null;
    }
  }

  private startStreaming(): void {
    for (const batch of this.retained) {
      if (batch.firstIndex + batch.count <= this.nextSend) continue;
      if (batch.firstIndex !== this.nextSend) {
        throw new ProtocolError(
          `replication: retained batch at ${batch.firstIndex}, expected ${this.nextSend}`,
        );
      }
      this.sendAppend(batch.bytes, batch.count, this.opts.epoch);
    }
    this.stateValue = 'streaming';
    this.log.info({ nextIndex: this.nextSend }, 'replication: standby caught up; streaming');
  }

  private sendAppend(records: Buffer, count: number, lastEpoch: number): void {
    const channel = this.channel;
    if (channel === null) return;
    channel.send({
      kind: 'append',
      epoch: this.opts.epoch,
      prevIndex: this.nextSend - 1,
      prevEpoch: this.prevEpoch,
      recordCount: count,
      records,
      primaryLastIndex: this.lastOffered,
      lastEpoch,
      commitIndex: this.opts.commitIndex(),
    });
    this.nextSend += count;
    this.prevEpoch = lastEpoch;
    this.sent.push({ lastIndex: this.nextSend - 1, sentAtMs: this.opts.clock.monotonicMs() });
    this.opts.metrics.batchBytes(records.length);
  }

  private primaryEpochs(): EpochStart[] {
    const epochs = this.opts.log.epochs();
    const last = epochs[epochs.length - 1];
    const pending = this.opts.log.durableNext <= this.lastOffered;
    if (pending && (last === undefined || last.epoch !== this.opts.epoch)) {
      return [...epochs, { epoch: this.opts.epoch, index: this.opts.log.durableNext }];
    }
    return epochs;
  }

  private primaryEpochAt(index: number): number | null {
    if (index >= this.opts.log.durableNext && index <= this.lastOffered) return this.opts.epoch;
    return this.opts.log.epochAt(index);
  }

  private checkTimeout(ackTimeoutMs: number): void {
    const oldest = this.sent[0];
    if (this.channel === null) return;
    if (oldest === undefined) {
      // Catching up with nothing in flight and no loop running: a missed wake-up; resume.
      if (this.stateValue === 'catching-up' && this.pumping === null) void this.pump();
      return;
    }
    if (this.opts.clock.monotonicMs() - oldest.sentAtMs > ackTimeoutMs) {
      this.reset(
        new ProtocolError(`replication: no answer from the standby in ${ackTimeoutMs} ms`),
      );
    }
  }

  /** Ends the session from this side and reconnects. */
  private reset(err: TallyError): void {
    const session = this.session;
    this.channel?.close(err);
    this.onClose(session, err);
  }

  private onClose(session: number, err: TallyError | null): void {
    if (session !== this.session) return;
    this.session++;
    this.channel = null;
    this.sent = [];
    if (this.stateValue === 'stopped') return;
    if (err instanceof StaleEpochError) {
      this.stateValue = 'fenced';
      this.opts.clock.clearInterval(this.watchdog);
      this.log.error(
        { err: err.message },
        'replication: fenced by the standby; acknowledging nothing more',
      );
      this.opts.onFenced(err);
      return;
    }
    this.opts.metrics.reconnected();
    // One warning when a standby that answered goes away, then quiet retries (a standby that
    // is down for minutes would otherwise log once a second), with a reminder now and then.
    const fields = { err: err?.message ?? 'stream ended', retryMs: this.backoffMs };
    // Before the standby first answered (both nodes starting together), quiet for a while.
    const n = this.failedAttempts++;
    const warn = this.answered
      ? n % reconnectWarnEvery === 0
      : n >= quietStartAttempts && (n - quietStartAttempts) % reconnectWarnEvery === 0;
    if (warn) {
      this.log.warn(
        { ...fields, attempts: this.failedAttempts },
        'replication: standby disconnected; reconnecting',
      );
    } else {
      this.log.debug(fields, 'replication: standby still unreachable; reconnecting');
    }
    this.stateValue = 'connecting';
    const delay = this.backoffMs * (0.5 + this.opts.random.next() * 0.5);
    this.backoffMs = Math.min(this.backoffMs * 2, this.opts.reconnectMaxMs ?? 1000);
    this.reconnectTimer = this.opts.clock.setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }
}

/** Epoch of the last record in a buffer of whole records. */
function lastEpochOf(buf: Buffer): number {
  let at = 0;
  let last = 0;
  while (at < buf.length) {
    last = at;
    at += buf.readUInt32LE(at);
  }
  return readU64(buf, last + 8);
}
