/**
 * The failover controller: the one authority on who is primary, who is standby, and which of
 * them may be promoted (the in-sync set).
 *
 * Every probeIntervalMs it asks both nodes for their status. When the primary has not
 * answered for failoverTimeoutMs and the standby is in the in-sync set, reachable and caught
 * up, it promotes the standby: the new configuration (epoch above every epoch seen, the old
 * primary as standby, only the new primary in sync, `promoting`) is stored first, then the
 * standby is told to promote with the controller's approval to acknowledge alone; once it
 * answers, `promoting` is cleared. A controller that restarts with `promoting` set repeats the
 * promotion (the node accepts a repeat of the epoch it already serves).
 *
 * The same one-step-at-a-time rule covers the primary's requests to take its standby out of
 * the in-sync set (degrade) and to add it back, and an operator's switchover. A node that is
 * not in the in-sync set is never promoted; the data path never waits for the controller.
 */
import { Serial } from '../core/serial';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock';
import { NotPrimaryError, UnavailableError, WrongRoleError } from '../core/errors';
import { failpoint } from '../core/failpoints';
import type { ClusterConfig, ConfigStore, NodeRef } from './config-store';
import type { ControllerMetrics } from './metrics';

/** What a probe learns from a node's Admin.Status. */
export interface ProbedStatus {
  role: string;
  state: string;
  epoch: number;
  /** The node that is primary of `epoch` (its identity is the pair). */
  epochPrimary: string;
  lastIndex: number;
  /** Standby: not yet at the primary's tail (never promotable while so). */
  catchingUp: boolean;
}

/** The controller's calls to a node's Admin service (gRPC in production, fakes in tests). */
export interface NodeAdmin {
  status(address: string): Promise<ProbedStatus>;
  promote(address: string, epoch: number, standby: string, aloneApproved: boolean): Promise<void>;
  stepDown(address: string, epoch: number): Promise<{ epoch: number; lastIndex: number }>;
}

export interface ControllerOptions {
  store: ConfigStore;
  admin: NodeAdmin;
  clock: Clock;
  logger: Logger;
  metrics: ControllerMetrics;
  /** The configuration to start from when the store has none: first node primary. */
  nodes: [NodeRef, NodeRef];
  probeIntervalMs: number;
  /** How long the primary may be unreachable before the standby is promoted. */
  failoverTimeoutMs: number;
  /**
   * A primary not yet seen since the controller started gets this much longer (default
   * max(5 s, 10 × failoverTimeoutMs)).
   */
  startupGraceMs?: number;
}

interface Seen {
  /** Monotonic ms of the last answer (0: never). */
  okAtMs: number;
  status: ProbedStatus | null;
  /** Last probe failed. */
  down: boolean;
}

export class Controller {
  private config!: ClusterConfig;
  private readonly serial = new Serial();
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  private readonly seen = new Map<string, Seen>();
  private readonly log: Logger;
  private startedAtMs = 0;

  constructor(private readonly opts: ControllerOptions) {
    this.log = opts.logger.child({ module: 'controller' });
  }

  /** Loads (or creates) the configuration and starts probing. */
  async start(): Promise<void> {
    const stored = await this.opts.store.load();
    if (stored === null) {
      const [primary, standby] = this.opts.nodes;
      const initial: ClusterConfig = {
        version: 1,
        epoch: 0,
        primary,
        standby,
        inSync: [primary.id, standby.id],
        lastFailover: null,
        promoting: false,
      };
      await this.opts.store.save(initial);
      this.config = initial;
      this.log.info(
        { primary: primary.id, standby: standby.id },
        'controller: new cluster configuration',
      );
    } else {
      this.config = stored;
      this.log.info(
        { version: stored.version, primary: stored.primary.id, promoting: stored.promoting },
        'controller: configuration loaded',
      );
    }
    this.opts.metrics.configVersion.set(this.config.version);
    this.startedAtMs = this.opts.clock.monotonicMs();
    this.timer = setInterval(() => void this.tick(), this.opts.probeIntervalMs);
  }

  stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    return this.exclusive(() => Promise.resolve());
  }

  get current(): ClusterConfig {
    return this.config;
  }

  /** The latest probe result per node id (for status pages). */
  observed(id: string): { status: ProbedStatus | null; down: boolean } {
    const s = this.seen.get(id);
    return { status: s?.status ?? null, down: s?.down ?? true };
  }

  /** Primary → controller: its standby is gone; durable once this resolves. */
  removeFromInSync(primaryId: string, epoch: number, standbyId: string): Promise<ClusterConfig> {
    return this.exclusive(async () => {
      this.checkPrimary(primaryId, epoch);
      const id = this.configuredStandby(standbyId);
      if (!this.config.inSync.includes(id)) return this.config;
      await this.change(
        { inSync: this.config.inSync.filter((x) => x !== id) },
        `degrade: ${primaryId} lost standby ${id}`,
      );
      this.log.warn(
        { primary: primaryId, standby: id, epoch },
        "controller: standby removed from the in-sync set at the primary's request; the primary acknowledges alone",
      );
      return this.config;
    });
  }

  /** Primary → controller: its standby holds everything acknowledged again. */
  addToInSync(primaryId: string, epoch: number, standbyId: string): Promise<ClusterConfig> {
    return this.exclusive(async () => {
      this.checkPrimary(primaryId, epoch);
      const id = this.configuredStandby(standbyId);
      if (this.config.inSync.includes(id)) return this.config;
      await this.change({ inSync: [...this.config.inSync, id] }, `standby ${id} caught up`);
      this.log.warn(
        { primary: primaryId, standby: id, epoch },
        'controller: standby back in the in-sync set',
      );
      return this.config;
    });
  }

  /** Operator: the in-sync standby becomes primary, the primary its standby, nothing lost. */
  switchover(): Promise<ClusterConfig> {
    return this.exclusive(async () => {
      const { primary, standby } = this.config;
      if (this.config.promoting)
        throw new UnavailableError('controller: a promotion is in progress');
      if (!this.config.inSync.includes(standby.id)) {
        throw new UnavailableError(
          `controller: standby ${standby.id} is not in sync; no switchover`,
        );
      }
      const seen = this.seen.get(standby.id);
      const fit =
        seen?.down === false && seen.status?.role === 'standby' && !seen.status.catchingUp;
      if (!fit) {
        throw new UnavailableError(
          `controller: standby ${standby.id} did not answer its last probe as a caught-up standby; no switchover`,
        );
      }
      const started = this.opts.clock.monotonicMs();
      const stepped = await this.opts.admin.stepDown(primary.address, 0);
      this.log.warn(
        { from: primary.id, to: standby.id, lastIndex: stepped.lastIndex },
        'controller: switchover: primary stepped down',
      );
      await this.promote(
        standby,
        primary,
        'switchover',
        'operator switchover',
        started,
        stepped.epoch,
        [standby.id, primary.id],
      );
      return this.config;
    });
  }

  /**
   * The standby a primary names must be the configured one ('' = the configured one): an
   * approval for another id would leave the configured standby promotable.
   */
  private configuredStandby(standbyId: string): string {
    const configured = this.config.standby.id;
    if (standbyId !== '' && standbyId !== configured) {
      throw new WrongRoleError(
        `controller: ${standbyId} is not the configured standby (${configured})`,
      );
    }
    return configured;
  }

  /** Only the configured primary (also while its promotion is unconfirmed) at its epoch or later. */
  private checkPrimary(primaryId: string, epoch: number): void {
    const c = this.config;
    if (c.primary.id !== primaryId || epoch < c.epoch) {
      throw new NotPrimaryError(
        `controller: ${c.primary.id} is the primary (epoch ${c.epoch}${c.promoting ? ', being promoted' : ''}), not ${primaryId} at epoch ${epoch}`,
      );
    }
  }

  /** Stores `changes` as the next version (durable before it takes effect). */
  private async change(changes: Partial<ClusterConfig>, why: string): Promise<void> {
    const next: ClusterConfig = { ...this.config, ...changes, version: this.config.version + 1 };
    await this.opts.store.save(next);
    this.config = next;
    this.opts.metrics.configVersion.set(next.version);
    this.log.info({ version: next.version, why }, 'controller: configuration changed');
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial.run(fn);
  }

  private async probe(node: NodeRef): Promise<Seen> {
    const seen = this.seen.get(node.id) ?? { okAtMs: 0, status: null, down: true };
    try {
      seen.status = await this.opts.admin.status(node.address);
      seen.okAtMs = this.opts.clock.monotonicMs();
      seen.down = false;
      this.opts.metrics.probes.inc({ node: node.id, result: 'ok' });
    } catch {
      seen.down = true;
      this.opts.metrics.probes.inc({ node: node.id, result: 'failed' });
    }
    this.seen.set(node.id, seen);
    return seen;
  }

  /** One probe round, then whatever it calls for (serialized with every other change). */
  private async tick(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      const { primary, standby, version } = this.config;
      const [p, s] = await Promise.all([this.probe(primary), this.probe(standby)]);
      // A change (a switchover, an approval) may have landed while probing: these answers
      // describe the old roles, so they decide nothing.
      await this.exclusive(() =>
        this.config.version === version ? this.decide(p, s) : Promise.resolve(),
      );
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'controller: probe round failed');
    } finally {
      this.probing = false;
    }
  }

  private async decide(p: Seen, s: Seen): Promise<void> {
    const c = this.config;
    const now = this.opts.clock.monotonicMs();
    if (c.promoting) {
      // Decided before (perhaps by a controller that died): finish it.
      if (!p.down) await this.resumePromotion(p);
      return;
    }
    if (
      !p.down &&
      p.status !== null &&
      p.status.role === 'standby' &&
      !p.status.catchingUp &&
      c.inSync.includes(c.primary.id)
    ) {
      // The configured primary is a caught-up standby: it stepped down for a switchover whose
      // controller died before storing it, or crashed inside its promotion. Hand it the
      // primary again (above every epoch seen), with whatever standby is in sync.
      await this.promote(
        c.primary,
        c.standby,
        'failover',
        'configured primary found as standby',
        now,
        p.status.epoch,
        c.inSync,
      );
      return;
    }
    // A primary never seen since this controller started gets a grace period first: it may
    // still be starting (a fresh cluster, or every process restarted together).
    const lastOk = p.okAtMs > 0 ? p.okAtMs : this.startedAtMs + this.startupGraceMs();
    if (!p.down || now - lastOk < this.opts.failoverTimeoutMs) return;
    const why = `primary ${c.primary.id} unreachable for ${Math.round(now - lastOk)} ms`;
    if (!c.inSync.includes(c.standby.id)) {
      this.warnOnce(
        `not-in-sync-${c.version}`,
        { standby: c.standby.id },
        `controller: ${why}, but standby ${c.standby.id} is not in sync: not promoting`,
      );
      return;
    }
    if (s.down || s.status === null || s.status.role !== 'standby' || s.status.catchingUp) {
      this.warnOnce(
        `standby-unfit-${c.version}`,
        { standby: c.standby.id, status: s.status },
        `controller: ${why}, but the standby cannot be promoted now`,
      );
      return;
    }
    const epochSeen = Math.max(p.status?.epoch ?? 0, s.status.epoch);
    await this.promote(c.standby, c.primary, 'failover', why, now, epochSeen, [c.standby.id]);
  }

  private startupGraceMs(): number {
    return this.opts.startupGraceMs ?? Math.max(5000, 10 * this.opts.failoverTimeoutMs);
  }

  private lastWarning = '';
  /** A reason not to promote is logged once, until the reason or the configuration changes. */
  private warnOnce(key: string, fields: object, message: string): void {
    if (this.lastWarning === key) return;
    this.lastWarning = key;
    this.log.warn(fields, message);
  }

  /**
   * Stores the promotion of `to` (epoch above everything seen, `inSync` as given, `promoting`),
   * then asks `to` to promote; clears `promoting` once it has.
   */
  private async promote(
    to: NodeRef,
    from: NodeRef,
    kind: 'failover' | 'switchover',
    reason: string,
    decidedAtMs: number,
    epochSeen: number,
    inSync: string[],
  ): Promise<void> {
    const epoch = Math.max(this.config.epoch, epochSeen) + 1;
    await this.change(
      {
        epoch,
        primary: to,
        standby: from,
        inSync,
        promoting: true,
        lastFailover: {
          atUnixMs: this.opts.clock.nowUnixMs(),
          kind,
          fromNode: from.id,
          toNode: to.id,
          epoch,
          durationMs: 0,
          reason,
        },
      },
      `${kind}: promote ${to.id} to epoch ${epoch} (${reason})`,
    );
    this.log.warn(
      { from: from.id, to: to.id, epoch, reason },
      `controller: ${kind}: promoting ${to.id}`,
    );
    await this.finishPromotion(decidedAtMs);
  }

  private async resumePromotion(p: Seen): Promise<void> {
    const c = this.config;
    if (p.status !== null && p.status.role === 'primary' && p.status.epoch >= c.epoch) {
      // It already serves (the confirmation was lost): record it rather than promote again.
      await this.change(
        { epoch: p.status.epoch, promoting: false },
        `${c.primary.id} already serves`,
      );
      this.log.warn(
        { primary: c.primary.id, epoch: p.status.epoch },
        'controller: new primary serving',
      );
      return;
    }
    const held = p.status;
    const ownedByOther =
      held !== null && held.epoch === c.epoch && held.epochPrimary !== c.primary.id;
    if (held !== null && held.role === 'standby' && (held.epoch > c.epoch || ownedByOther)) {
      // It accepted a newer epoch from someone else meanwhile: promote above it.
      await this.change({ epoch: held.epoch + 1 }, "promotion: epoch raised above the node's");
    }
    await this.finishPromotion(this.opts.clock.monotonicMs());
  }

  private async finishPromotion(decidedAtMs: number): Promise<void> {
    const c = this.config;
    const alone = !c.inSync.includes(c.standby.id);
    await failpoint('controller.beforePromote');
    try {
      await this.opts.admin.promote(c.primary.address, c.epoch, c.standby.address, alone);
    } catch (err) {
      this.log.warn(
        { to: c.primary.id, epoch: c.epoch, err: (err as Error).message },
        'controller: promotion not confirmed yet; retrying',
      );
      return;
    }
    await failpoint('controller.afterPromote');
    const durationMs = Math.round(this.opts.clock.monotonicMs() - decidedAtMs);
    const last = c.lastFailover;
    await this.change(
      { promoting: false, lastFailover: last ? { ...last, durationMs } : null },
      `${c.primary.id} serves epoch ${c.epoch}`,
    );
    this.opts.metrics.failovers.inc({ kind: last?.kind ?? 'failover' });
    this.opts.metrics.promoteSeconds.observe(durationMs / 1000);
    this.log.warn(
      { primary: c.primary.id, epoch: c.epoch, durationMs },
      'controller: new primary serving',
    );
  }
}
