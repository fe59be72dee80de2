/**
 * A primary's standing with its standby, under a failover controller:
 *
 *   in-sync   every acknowledgement waits for the standby;
 *   degrading a batch has waited longer than degradeAfterMs: the controller is asked to take
 *             the standby out of the in-sync set (policy `degrade`; `block` never asks);
 *   alone     the controller has durably recorded that: acknowledged after the local fsync,
 *             batches still offered to the standby whenever it is connected;
 *   resyncing the standby streams again and has shown it keeps up (its ack reached a record
 *             written after it was back): acknowledgements wait for it again, and once its ack
 *             covers everything acknowledged alone the controller is asked to add it back.
 *             A standby that is connected but silent (paused) never gets here, so the primary
 *             does not flap between acknowledging alone and waiting for it.
 *
 * The same runs while a primary starts: a standby that does not accept the new epoch (down,
 * or refusing the Hello) for degradeAfterMs is taken out of the in-sync set the same way, and
 * the primary then begins its epoch alone.
 *
 * Safety rests on the order: the primary acknowledges alone only after the controller's
 * durable yes, and the controller never promotes a node outside the in-sync set.
 */
import type { Logger } from 'pino';
import { assert } from '../core/assert';
import type { Clock, TimerHandle } from '../core/clock';
import { NotPrimaryError } from '../core/errors';
import type { Metrics } from '../core/metrics';
import type { InSyncAuthority, StandbyLossPolicy } from './types';

export type SyncState = 'in-sync' | 'degrading' | 'alone' | 'resyncing';

/** What the tracker reads from the replication sender. */
export interface StandbyLink {
  readonly state: string;
  readonly ackedIndex: number;
  readonly standbyId: string;
}

/** Where acknowledgements wait for the standby: the committer, or a primary still starting. */
export interface AloneSwitch {
  /** How long the oldest write (or the epoch proposal) has waited for the standby. */
  standbyWaitMs(nowMs: number): number;
  /** The controller's durable yes (true), or the standby is waited for again (false). */
  setAlone(alone: boolean): void;
}

export interface InSyncTrackerOptions {
  nodeId: string;
  /** This primary's data directory (the controller checks it is the member it knows). */
  incarnation: string;
  epoch: number;
  authority: InSyncAuthority;
  policy: StandbyLossPolicy;
  degradeAfterMs: number;
  committer: AloneSwitch;
  sender: StandbyLink;
  /** The last index written (or being written) locally. */
  lastIndex: () => number;
  /** The last index acknowledged to callers, and its epoch. */
  acknowledged: () => { index: number; epoch: number };
  /** The configured standby's id, when the controller named it (before any Hello reply). */
  standbyId: string;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** The controller says another node is primary: this one must step down. */
  onDeposed: (reason: string) => void;
  /** Start alone (the controller approved it with the promotion). */
  alone: boolean;
  /**
   * Why this primary must not go on without the standby now, whatever the wait (null: it may):
   * its log may lack acknowledged records only the standby holds.
   */
  holdOn?: () => string | null;
}

/** How often the tracker looks at the standby's acks. */
const tickMs = 100;
/** After the controller could not be asked, the next attempt waits this long. */
const askRetryMs = 1000;

export class InSyncTracker {
  private stateValue: SyncState;
  private resyncMark = 0;
  /** Alone, standby streaming: its ack must reach this index before it is waited for again. */
  private keepUpMark = 0;
  /** The last request's sequence number in this term. */
  private seq = 0;
  private asking = false;
  private nextAskAtMs = 0;
  /** After stop() an answer still on its way changes nothing (the node is no primary now). */
  private stopped = false;
  private readonly timer: TimerHandle;
  /** The standby's ack as last seen in this term: it only moves forward. */
  private lastAck = 0;
  /** The last reason given for not degrading (said once). */
  private heldFor = '';

  constructor(private readonly opts: InSyncTrackerOptions) {
    // Starting alone: the caller begins its epoch acknowledging alone (setAlone is not called).
    this.stateValue = opts.alone ? 'alone' : 'in-sync';
    opts.metrics.degraded.set(opts.alone ? 1 : 0);
    this.timer = opts.clock.setInterval(() => this.tick(), tickMs);
    this.timer.unref();
  }

  get state(): SyncState {
    return this.stateValue;
  }

  stop(): void {
    this.stopped = true;
    this.opts.clock.clearInterval(this.timer);
  }

  private get standbyId(): string {
    return this.opts.sender.standbyId || this.opts.standbyId;
  }

  private tick(): void {
    const { committer, sender, clock } = this.opts;
    assert(sender.ackedIndex >= this.lastAck, 'in-sync: the standby ack only moves forward');
    this.lastAck = sender.ackedIndex;
    const now = clock.monotonicMs();
    if (this.asking || now < this.nextAskAtMs) return;
    const waitMs = committer.standbyWaitMs(now);
    switch (this.stateValue) {
      case 'in-sync':
      case 'resyncing':
        if (this.opts.policy === 'degrade' && waitMs > this.opts.degradeAfterMs) {
          const hold = this.opts.holdOn?.() ?? null;
          if (hold === null) this.degrade(waitMs);
          else if (hold !== this.heldFor) {
            this.heldFor = hold;
            this.opts.logger.error(
              { standby: this.standbyId, waitedMs: Math.round(waitMs) },
              `replication: the standby has not acknowledged in time, but this primary does not go on without it: ${hold}`,
            );
          }
        } else if (this.stateValue === 'resyncing' && sender.ackedIndex >= this.resyncMark) {
          this.addBack();
        }
        return;
      case 'alone':
        if (sender.state !== 'streaming') {
          this.keepUpMark = 0;
          return;
        }
        // A connected standby must first show it keeps up: its ack reaches a record written
        // after it was back. One that is paused (SIGSTOP) never does, and is not waited for.
        if (this.keepUpMark === 0) this.keepUpMark = Math.max(1, this.opts.lastIndex());
        if (sender.ackedIndex >= this.keepUpMark) {
          // From here every acknowledgement waits for the standby again; once its ack covers
          // the last record written alone, it holds everything ever acknowledged.
          this.keepUpMark = 0;
          committer.setAlone(false);
          this.resyncMark = this.opts.lastIndex();
          this.stateValue = 'resyncing';
          this.opts.logger.info(
            { standby: this.standbyId, mark: this.resyncMark },
            'replication: standby streaming again; waiting for it to cover every acknowledged record',
          );
        }
        return;
      case 'degrading':
        return;
    }
  }

  private degrade(waitMs: number): void {
    const from = this.stateValue;
    this.stateValue = 'degrading';
    this.asking = true;
    const { authority, epoch, logger } = this.opts;
    const standbyId = this.standbyId;
    logger.warn(
      { standby: standbyId, waitedMs: Math.round(waitMs) },
      'replication: the standby has not acknowledged in time; asking the controller to take it out of the in-sync set',
    );
    authority.removeFromInSync(this.request(standbyId)).then(
      () => {
        this.asking = false;
        if (this.stopped) return;
        this.stateValue = 'alone';
        this.opts.committer.setAlone(true);
        this.opts.metrics.degraded.set(1);
        logger.warn(
          { standby: standbyId, epoch },
          'replication: degraded: the controller removed the standby from the in-sync set; acknowledging after the local fsync alone',
        );
      },
      (err: unknown) => {
        this.asking = false;
        this.stateValue = from;
        this.refused(err, 'degrade');
      },
    );
  }

  /**
   * The controller's configuration leaves the standby out of the in-sync set although every
   * acknowledgement here waits for it (the controller rebuilt its configuration, or missed an
   * answer): ask it to verify the standby and add it back.
   */
  noteInSyncSet(inSync: readonly string[]): void {
    if (this.stateValue !== 'in-sync' || this.asking || this.stopped) return;
    if (this.opts.clock.monotonicMs() < this.nextAskAtMs) return; // refused lately: back off
    const standbyId = this.standbyId;
    if (standbyId === '' || inSync.includes(standbyId)) return;
    if (this.opts.sender.state !== 'streaming') return;
    this.addBack();
  }

  private request(standbyId: string) {
    const { nodeId, epoch, incarnation } = this.opts;
    const acknowledged = this.opts.acknowledged();
    return {
      primaryId: nodeId,
      primaryIncarnation: incarnation,
      epoch,
      standbyId,
      acknowledgedIndex: acknowledged.index,
      acknowledgedEpoch: acknowledged.epoch,
      seq: ++this.seq,
    };
  }

  private addBack(): void {
    this.asking = true;
    const { authority, epoch, logger } = this.opts;
    const standbyId = this.standbyId;
    authority.addToInSync(this.request(standbyId)).then(
      () => {
        this.asking = false;
        if (this.stopped) return;
        this.stateValue = 'in-sync';
        this.opts.metrics.degraded.set(0);
        logger.warn(
          { standby: standbyId, epoch, ackIndex: this.opts.sender.ackedIndex },
          'replication: the standby is back in the in-sync set',
        );
      },
      (err: unknown) => {
        this.asking = false;
        this.refused(err, 'add the standby back');
      },
    );
  }

  private refused(err: unknown, what: string): void {
    if (this.stopped) return;
    const message = (err as Error).message;
    this.nextAskAtMs = this.opts.clock.monotonicMs() + askRetryMs;
    if (err instanceof NotPrimaryError) {
      this.opts.logger.error({ err: message }, `replication: the controller refused to ${what}`);
      this.opts.onDeposed(message);
      return;
    }
    this.opts.logger.warn({ err: message }, `replication: cannot ${what} (controller): retrying`);
  }
}
