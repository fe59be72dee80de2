/**
 * One term of a node as primary (or standalone): it proposes the term's epoch to the standby,
 * persists it once accepted (or alone, on the controller's durable yes), writes the
 * epoch-start record and serves; it owns the term's committer, the sender to the standby and
 * the in-sync tracker. The node (node.ts) owns the lifecycle and hands a term its host: the
 * stores, the options, and the node's state as callbacks. Ends with stop(): a deposed or
 * stepping-down primary starts a new PrimaryTerm next time, never reuses one.
 */
import type { Logger } from 'pino';
import { assert } from '../core/assert';
import type { Clock, Random } from '../core/clock';
import { StorageFatalError, type StaleEpochError, type TallyError } from '../core/errors';
import { failpoint } from '../core/failpoints';
import type { Dialer } from '../replication/protocol';
import { Sender } from '../replication/sender';
import { Committer } from './committer';
import { withLed } from './data-dir';
import { InSyncTracker } from './in-sync';
import type { LogStore } from './log-store';
import type { MetaStore } from './meta-store';
import type { NodeOptions } from './node-options';
import { primaryLogOf, senderMetricsOf } from './replica';
import type { Role } from './types';
import { queuedRequestsMaxDefault } from '../core/limits';

export interface Term {
  epoch: number;
  /** With the epoch number and this node's id, the epoch's identity. */
  nonce: string;
  /** The epoch is already in meta (a promotion stored it). */
  persisted: boolean;
  /** A forced promotion: the epoch-start record raises every counter by this much. */
  skipAhead: number;
}

/** What a primary term needs of its node. */
export interface PrimaryHost {
  readonly opts: NodeOptions;
  readonly store: LogStore;
  /** The node's one meta writer. */
  readonly metaStore: MetaStore;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
  readonly segmentSizeBytes: number;
  /** The node is starting (no epoch begun yet). */
  starting(): boolean;
  /** Starting, and not turned standby meanwhile: still this term's turn to begin. */
  stillStarting(): boolean;
  /** The epoch-start record is durable: the node serves. */
  nowServing(): void;
  isServing(): boolean;
  fail(err: TallyError): void;
  /** The standby holds a newer epoch, or records this log lacks: acknowledge nothing more. */
  fence(err: StaleEpochError): void;
  /** The controller names another primary: rejoin as its standby. */
  becomeStandby(reason: string): void;
  /** Beginning the epoch failed (a storage error): the node stops. */
  beginFailed(err: unknown): void;
}

const batchBytesMax = 1024 * 1024;
/** With a controller, a batch waiting this long for the standby starts a degrade. */
const degradeAfterMsDefault = 500;
/** A starting primary waits this long for its standby before asking to go on alone. */
const standbyStartWaitMs = 3000;

export class PrimaryTerm {
  committer: Committer | null = null;
  sender: Sender | null = null;
  inSync: InSyncTracker | null = null;
  /** The term's epoch is being begun (or was): only once. */
  private beginning = false;
  /** The standby's address and id (from --standby or the controller's placement). */
  standbyTarget = '';
  standbyId = '';

  constructor(private readonly host: PrimaryHost) {}

  /** Ends the term's replication (the committer is halted by the caller, who waits for it). */
  stop(): void {
    this.inSync?.stop();
    this.sender?.stop();
  }

  /**
   * Proposes the term's epoch to the standby; once accepted, persists it (unless a promotion
   * already did) and begins it. Until then the node is `starting` and refuses allocations.
   * With a controller, a standby that does not accept in time is taken out of the in-sync set
   * (the tracker asks) and the epoch begins alone; `alone` (approved already) begins at once.
   */
  start(term: Term, standby: string, standbyId: string, alone: boolean): void {
    this.standbyTarget = standby;
    this.standbyId = standbyId;
    this.host.log.info(
      { epoch: term.epoch, standby, alone },
      alone
        ? 'node: primary serving alone (approved by the controller) while the standby is brought back'
        : 'node: primary waiting for the standby to accept the epoch',
    );
    void Promise.resolve(this.host.opts.advertiseAddress ?? '').then((address) => {
      if (!this.host.starting()) return;
      const sender = this.startSender(term, standby, address);
      this.startTracker(term, sender, alone);
      if (alone) this.beginPrimary(term, sender);
    });
  }

  /**
   * The standby accepted this primary's epoch after the sender checked that this log holds
   * every record the standby confirmed to a primary: a tail cut at recovery lost nothing
   * acknowledged, and this node may go on alone again when the standby is lost.
   */
  private logCompared(): void {
    if (!this.host.metaStore.current.tailCut) return;
    this.host.metaStore
      .update((m) => (m.tailCut ? { tailCut: undefined } : null))
      .then(
        () =>
          this.host.log.info(
            'node: the standby holds nothing this log lost; the torn tail cut at recovery held no acknowledged record',
          ),
        (err: unknown) =>
          this.host.fail(
            new StorageFatalError(`node: meta not written: ${(err as Error).message}`),
          ),
      );
  }

  /** Begins the term once: alone (approved) or after the standby accepted, whichever is first. */
  private beginPrimary(term: Term, sender: Sender): void {
    if (this.beginning) return;
    this.beginning = true;
    const begin = term.persisted
      ? this.beginCommitter(term, sender)
      : this.beginEpoch(term, sender);
    begin.catch((err: unknown) => this.host.beginFailed(err));
  }

  private startSender(term: Term, standby: string, address: string): Sender {
    const dial = this.host.opts.dial as (target: string) => Dialer;
    // A forced term's floor counts from its Hello on, before the epoch-start record applies it
    // (it is durable in meta already, as pendingSkipAhead).
    const termFloor = this.host.store.state.floor + term.skipAhead;
    const sender = new Sender({
      dialer: dial(standby),
      log: primaryLogOf(this.host.store),
      epoch: term.epoch,
      epochNonce: term.nonce,
      primaryId: this.host.opts.id,
      primaryAddress: address,
      clusterId: this.host.metaStore.current.clusterId ?? '',
      primaryIncarnation: this.host.metaStore.current.incarnation,
      commitIndex: () => this.committer?.acknowledgedIndex ?? 0,
      idFloor: () => Math.max(this.host.store.state.floor, termFloor),
      logger: this.host.opts.logger.child({ module: 'replication' }),
      clock: this.host.clock,
      random: this.host.random,
      metrics: senderMetricsOf(this.host.opts.metrics),
      ackTimeoutMs: this.host.opts.replicationAckTimeoutMs,
      onAck: () => this.committer?.onAck(),
      onAccepted: () => {
        this.logCompared();
        this.beginPrimary(term, sender);
      },
      keepConfirmed: () => this.inSync?.state !== 'alone' || !!this.host.metaStore.current.tailCut,
      onFenced: (err) => this.host.fence(err),
    });
    this.sender = sender;
    sender.start(this.host.store.lastIndex);
    return sender;
  }

  /**
   * With a controller: tracks the standby's standing for this term, from the proposal on —
   * while starting, "waiting for the standby" is the time since the proposal went out.
   */
  private startTracker(term: Term, sender: Sender, alone: boolean): void {
    const controller = this.host.opts.controller;
    if (controller === undefined) return;
    // A starting primary gives its standby longer than a slow ack gets: after a restart of both
    // the standby may still be recovering. Past that it asks to go on alone, like a degrade.
    const degradeAfterMs = this.host.opts.degradeAfterMs ?? degradeAfterMsDefault;
    const startGraceMs = Math.max(0, standbyStartWaitMs - degradeAfterMs);
    const proposedAtMs = this.host.clock.monotonicMs() + startGraceMs;
    this.inSync = new InSyncTracker({
      nodeId: this.host.opts.id,
      incarnation: this.host.metaStore.current.incarnation,
      epoch: term.epoch,
      authority: controller,
      policy: this.host.opts.standbyLossPolicy ?? 'degrade',
      degradeAfterMs,
      committer: {
        standbyWaitMs: (now) => {
          if (this.committer !== null) return this.committer.standbyWaitMs(now);
          return this.beginning ? 0 : Math.max(0, now - proposedAtMs);
        },
        setAlone: (on) => {
          if (this.committer !== null) this.committer.setAlone(on);
          else if (on) this.beginPrimary(term, sender);
        },
      },
      sender,
      lastIndex: () => this.host.store.wal.nextIndex - 1,
      acknowledged: () => this.acknowledged(),
      standbyId: this.standbyId,
      clock: this.host.clock,
      logger: this.host.opts.logger.child({ module: 'replication' }),
      metrics: this.host.opts.metrics,
      onDeposed: (reason) => this.host.becomeStandby(reason),
      alone,
      holdOn: () =>
        this.host.metaStore.current.tailCut
          ? 'recovery cut a torn tail off its WAL, and only the standby can show that no acknowledged record was in it (an operator may promote the standby, or force this node)'
          : null,
    });
  }

  /** The last index acknowledged to callers in this term, and its epoch. */
  acknowledged(): { index: number; epoch: number } {
    const index = this.committer?.acknowledgedIndex ?? 0;
    return { index, epoch: index === 0 ? 0 : (this.host.store.epochAt(index) ?? 0) };
  }

  /** Persists the term's epoch as this node's own, then begins it. */
  async beginEpoch(term: Term, sender: Sender | null): Promise<void> {
    const role: Role = sender ? 'primary' : this.host.metaStore.current.role;
    await failpoint('node.beforeBeginEpoch', this.host.clock);
    // Still this term's turn? (It may have been deposed and turned standby meanwhile.)
    const current = (): boolean => this.host.stillStarting();
    await this.host.metaStore.update((m) =>
      current() && m.epoch <= term.epoch
        ? {
            epoch: term.epoch,
            epochPrimary: this.host.opts.id,
            epochNonce: term.nonce,
            role,
            catchingUp: undefined,
            led: withLed(m, term.epoch),
          }
        : null,
    );
    if (!current() || this.host.metaStore.current.epochNonce !== term.nonce) return; // write nothing
    await this.beginCommitter(term, sender);
  }

  /** Writes the epoch-start record (replicated when there is a standby), then serves. */
  beginCommitter(term: Term, sender: Sender | null): Promise<void> {
    if (!this.host.starting()) return Promise.resolve(); // closed or failed meanwhile
    const { epoch } = term;
    // Never write in an epoch below the one this node accepted (that one is someone else's).
    if (epoch < this.host.metaStore.current.epoch) {
      assert(
        false,
        `node: beginning epoch ${epoch} after accepting epoch ${this.host.metaStore.current.epoch}`,
      );
    }
    this.host.opts.metrics.epoch.set(epoch);
    const committer = new Committer({
      wal: this.host.store.wal,
      state: this.host.store.state,
      clock: this.host.clock,
      logger: this.host.log,
      metrics: this.host.opts.metrics,
      queuedRequestsMax: this.host.opts.queuedRequestsMax ?? queuedRequestsMaxDefault,
      batchBytesMax: Math.min(batchBytesMax, this.host.segmentSizeBytes),
      epoch,
      onBatchDurable: (lastIndex, bytes) =>
        this.host.store.noteDurable(lastIndex, bytes, this.host.isServing()),
      onFatal: (err) => this.host.fail(err),
      replicator: sender ?? undefined,
      ackWaitMs: this.host.opts.ackWaitMs,
    });
    this.committer = committer;
    // Alone only on the controller's durable yes (given before the epoch-start record: then
    // even that is acknowledged without the standby).
    committer.setAlone(this.inSync?.state === 'alone');
    return new Promise((resolve, reject) => {
      committer.submitEpochStart(
        this.host.opts.id,
        (err, result) => {
          if (err) {
            this.host.log.error(
              { epoch, err: err.message },
              'node: epoch-start record not written',
            );
            return reject(err);
          }
          this.host.nowServing();
          const fields = { epoch, index: result?.index, nodeId: this.host.opts.id };
          if (term.skipAhead === 0) {
            this.host.log.info(fields, 'node: serving');
            return resolve();
          }
          this.host.log.warn(
            { ...fields, skipAhead: term.skipAhead, floor: this.host.store.state.floor },
            'node: serving after a forced promotion; every counter skipped ahead',
          );
          // The skip is in the durable log now: it no longer needs carrying.
          this.host.metaStore
            .update((m) => (m.pendingSkipAhead ? { pendingSkipAhead: undefined } : null))
            .then(() => resolve(), reject);
        },
        term.skipAhead,
      );
    });
  }
}
