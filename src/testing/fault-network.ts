/**
 * An in-memory network between a primary's Sender and a standby's Receiver that misbehaves on
 * purpose: each message may be dropped, delivered twice, delayed or reordered (seeded, so a
 * failing seed replays), and the link can be partitioned (new streams fail, open ones break).
 * Deliveries are timers on the given clock: on a SimClock the network runs in virtual time.
 */
import { systemClock, type Clock, type TimerHandle } from '../core/clock';
import { UnavailableError, type TallyError } from '../core/errors';
import type { Channel, ChannelEvents, Dialer, ToPrimary, ToStandby } from '../replication/protocol';
import { seededRandom } from './random';

export interface FaultPlan {
  dropRate?: number;
  duplicateRate?: number;
  /** Share of messages held back by an extra 2 × delayMsMax (they overtake or get overtaken). */
  reorderRate?: number;
  delayMsMax?: number;
}

/** Where the standby accepts a stream (a node's openReplication). */
export type Accept = (channel: Channel<ToPrimary>, peer: string) => ChannelEvents<ToStandby>;

export class FaultNetwork {
  plan: FaultPlan;
  readonly stats = { delivered: 0, dropped: 0, duplicated: 0, reordered: 0, streams: 0 };
  private readonly random: () => number;
  private partitioned = false;
  /** Messages this way are lost while streams stay open (a one-way partition), until heal(). */
  private blackholed: 'toStandby' | 'toPrimary' | null = null;
  private readonly open = new Set<(err: TallyError) => void>();
  private readonly timers = new Set<TimerHandle>();

  constructor(
    seed: number,
    plan: FaultPlan = {},
    private readonly clock: Clock = systemClock,
  ) {
    this.random = seededRandom(seed);
    this.plan = plan;
  }

  /** Cuts the link: open streams break, new ones fail, until heal(). */
  partition(): void {
    this.partitioned = true;
    for (const breakStream of [...this.open]) breakStream(new UnavailableError('net: partitioned'));
  }

  heal(plan: FaultPlan = {}): void {
    this.partitioned = false;
    this.blackholed = null;
    this.plan = plan;
  }

  /**
   * A one-way partition: every message in `way` is lost from now on, and nothing breaks the
   * streams (no reset arrives, as with a firewall dropping one direction): only timeouts tell.
   */
  blackhole(way: 'toStandby' | 'toPrimary'): void {
    this.blackholed = way;
  }

  /** Stops every pending delivery (test teardown). */
  stop(): void {
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
  }

  dialer(target: string, accept: () => Accept): Dialer {
    return { target, open: (events) => this.connect(events, accept()) };
  }

  private connect(primary: ChannelEvents<ToPrimary>, accept: Accept): Channel<ToStandby> {
    this.stats.streams++;
    let closed = false;
    let standby: ChannelEvents<ToStandby> | null = null;
    // Like TCP: what was sent before a close still arrives (unless dropped); the close after it.
    const close = (err?: TallyError): void => {
      if (closed) return;
      closed = true;
      this.open.delete(close);
      this.later(3 * (this.plan.delayMsMax ?? 0) + 1, () => {
        primary.onClose(err ?? null);
        standby?.onClose(err ?? null);
      });
    };
    const toPrimary: Channel<ToPrimary> = {
      send: (m) => !closed && this.deliver(() => primary.onMessage(m), 'toPrimary'),
      close,
    };
    this.open.add(close);
    if (this.partitioned) close(new UnavailableError('net: partitioned'));
    else standby = accept(toPrimary, 'fault-net');
    return {
      send: (m) => !closed && this.deliver(() => standby?.onMessage(m), 'toStandby'),
      close,
    };
  }

  private deliver(fn: () => unknown, way: 'toStandby' | 'toPrimary'): void {
    const { dropRate = 0, duplicateRate = 0, reorderRate = 0, delayMsMax = 0 } = this.plan;
    if (this.partitioned || this.blackholed === way || this.random() < dropRate) {
      this.stats.dropped++;
      return;
    }
    let delay = this.random() * delayMsMax;
    if (this.random() < reorderRate) {
      delay += 2 * delayMsMax;
      this.stats.reordered++;
    }
    this.stats.delivered++;
    this.later(delay, fn);
    if (this.random() < duplicateRate) {
      this.stats.duplicated++;
      this.later(delay + this.random() * delayMsMax, fn);
    }
  }

  private later(delayMs: number, fn: () => unknown): void {
    const t = this.clock.setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, delayMs);
    this.timers.add(t);
  }
}
