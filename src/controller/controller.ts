/**
 * The failover controller: the one authority on who is primary, who is standby, which data
 * directories they run on, and which of them may be promoted (the in-sync set).
 *
 * Identity. Each member's data directory has an incarnation (random, given at creation). A
 * node reports it when it starts (Join) and in every probe. A member whose directory the
 * controller does not know (new, wiped, replaced), or whose log ends before what the controller
 * knows was acknowledged (an old copy of its directory), is durably taken out of the in-sync set
 * before anything else and placed as a catching-up standby; it is never primary or promoted
 * until the primary, holding every acknowledged record, has caught it up and the controller has
 * verified that (AddToInSync). When no member that holds the history is up, the cluster does
 * not serve: the controller says why (log, status, metric) and waits; an operator may force a
 * promotion with a skip-ahead.
 *
 * Health. Every probeIntervalMs it asks both nodes for their status. A configured primary that
 * is unreachable, or does not serve as primary (starting, fenced, a standby), or whose local
 * disk write has stalled, for failoverTimeoutMs, is failed over to a promotable standby (in
 * sync, the known directory, caught up): the configured primary itself when it is such a
 * standby (it stepped down), else the configured standby. The new configuration (epoch above
 * every epoch seen, only the new primary in sync, `promoting`) is stored first, then the node
 * is told to promote; once it answers, `promoting` is cleared. A promotion that does not
 * complete within promoteTimeoutMs while another promotable standby exists goes to that one.
 *
 * The same one-step-at-a-time rule covers the primary's requests to take its standby out of
 * the in-sync set (degrade) and to add it back (verified by probing the standby), an
 * operator's switchover (handed back to the old primary if the target does not serve in time)
 * and a forced promotion. The data path never waits for the controller.
 */
import type { Logger } from 'pino';
import { sleep, systemRandom, type Clock, type Random, type TimerHandle } from '../core/clock';
import {
  ConfigError,
  DataDirError,
  InvalidArgumentError,
  NotPrimaryError,
  SwitchoverFailedError,
  UnavailableError,
  WrongRoleError,
} from '../core/errors';
import { failpoint } from '../core/failpoints';
import { randomId, shortId } from '../core/ids';
import { compareBallots, formatBallot, noBallot, obeys, type Ballot } from '../core/ballot';
import { Serial } from '../core/serial';
import {
  memberOf,
  type ClusterConfig,
  type ConfigStore,
  type FailoverRecord,
  type MemberRecord,
  type NodeRef,
  type Position,
} from './config-store';
import {
  comparePositions,
  formatPosition,
  holds,
  lastPosition,
  memberProblem,
  primaryProblem,
  promotionProblem,
  type NodeReport,
} from './members';
import type { ControllerMetrics } from './metrics';
import { buildConfig } from './rebuild';

/** The controller's calls to a node's Admin service (gRPC in production, fakes in tests). */
export interface NodeAdmin {
  status(address: string): Promise<NodeReport>;
  /** Admin.Fence: the node stores `ballot` if higher; its report after that (ballot included). */
  fence(address: string, ballot: Ballot): Promise<NodeReport>;
  promote(address: string, epoch: number, standby: string, options: PromoteCall): Promise<void>;
  stepDown(address: string, epoch: number): Promise<{ epoch: number; lastIndex: number }>;
  /**
   * A fresh connection to `address` is refused: nothing listens on its port (the process is
   * gone). False when it connects (a paused process's kernel still accepts), stays silent (a
   * cut link) or fails otherwise. Without it every failover waits for the timeout.
   */
  refusesConnections?(address: string): Promise<boolean>;
  /** Registers `lost`, called when an open connection to a node drops (reset or closed). */
  onConnectionLost?(lost: (address: string) => void): void;
}

export interface PromoteCall {
  aloneApproved: boolean;
  /** An operator's forced promotion with this skip-ahead (0: none). */
  skipAhead: number;
  /** The configuration's ballot (absent: a configuration from before ballots). */
  ballot?: Ballot;
}

/** Where a node is put at start (tally.v1.Placement). */
export interface NodePlacement {
  role: 'primary' | 'standby';
  standby?: NodeRef;
  aloneApproved: boolean;
  clusterId: string;
  /** Standby: not counted in sync. */
  catchingUp: boolean;
  /** The configuration's ballot (absent: a configuration from before ballots). */
  ballot?: Ballot;
}

export interface InSyncChange {
  primaryId: string;
  primaryIncarnation: string;
  epoch: number;
  standbyId: string;
  acknowledged: Position;
  /** Orders the primary's requests within its epoch. */
  seq: number;
}

export interface ControllerOptions {
  store: ConfigStore;
  admin: NodeAdmin;
  /** Every timer and clock read of the controller (probe rounds, timeouts, retries). */
  clock: Clock;
  /** Where a new cluster id comes from (default systemRandom: the OS's CSPRNG). */
  random?: Random;
  logger: Logger;
  metrics: ControllerMetrics;
  /**
   * The members (--node flags). Required without a stored configuration; with one they must
   * match it (or, with updateAddresses, give new addresses for the same ids).
   */
  nodes?: [NodeRef, NodeRef];
  /** Apply the addresses in `nodes` to the stored configuration (same member ids). */
  updateAddresses?: boolean;
  /** No stored configuration: create one now, the first node holding the history. */
  bootstrap?: boolean;
  probeIntervalMs: number;
  /** How long the primary may be unhealthy before a promotable standby is promoted. */
  failoverTimeoutMs: number;
  /**
   * A primary not yet seen serving since the controller started gets this much longer
   * (default max(5 s, 2 × failoverTimeoutMs)): a fresh cluster, or every process restarted.
   */
  startupGraceMs?: number;
  /** A promotion (or switchover) not completed in this long goes elsewhere if it can. */
  promoteTimeoutMs?: number;
  /** How often a fresher vouched position is written when nothing else changes. */
  vouchPersistMs?: number;
}

interface Seen {
  /** Monotonic ms of the last answer in time for its round (0: never). */
  okAtMs: number;
  status: NodeReport | null;
  /** The last round's probe failed or was not answered within the round. */
  down: boolean;
  /** The last round whose probe failed with an error (refused, dropped), not silence. */
  failedRound: number;
  /**
   * Monotonic ms of its last answer as the configured, serving primary, late answers included
   * (0: never): a primary that answers late is slow, not silent.
   */
  servingAtMs: number;
}

/**
 * The primary refused a fresh connection (its port is closed): a crash, not silence. With its
 * standby's stream from it reset too, that is proof enough to fail over without the timeout.
 */
interface Refusal {
  primaryId: string;
  version: number;
  /** The standby, asked after the refusal, has no stream from a primary. */
  standbySawReset: boolean;
}

const vouchPersistMsDefault = 1000;

export class Controller {
  private configValue: ClusterConfig | null = null;
  private readonly serial = new Serial();
  private timer: TimerHandle | null = null;
  private probing = false;
  /** A round was asked for while one ran (a dropped connection): run another right after. */
  private probeAgain = false;
  /** Probe rounds started; an answer that comes after its round decided is late. */
  private round = 0;
  private refusal: Refusal | null = null;
  /** A quick extra round while a refusal waits for the standby to see the reset. */
  private soonTimer: TimerHandle | null = null;
  private readonly seen = new Map<string, Seen>();
  /** Reports from nodes while there is no configuration (Join or probe), by node id. */
  private readonly reports = new Map<string, NodeReport>();
  /**
   * Nodes whose report came from their Join: a process started since, waiting for its
   * placement (which carries the ballot), that no older controller's command can reach.
   */
  private readonly joined = new Set<string>();
  /** The ballot of the configuration this controller is creating (picked once). */
  private creating: Ballot | null = null;
  private readonly log: Logger;
  private startedAtMs = 0;
  /** When the configured primary was last seen serving (monotonic ms; 0: not since start). */
  private primaryHealthyAtMs = 0;
  /** When a node was last placed as primary at its start (it begins its epoch after that). */
  private primaryPlacedAtMs = -Infinity;
  /** When the current promotion was decided (or found on start). */
  private promotingSinceMs = 0;
  private blockedReason = '';
  /** The block is only a configuration waiting for the members' first reports (no warning). */
  private blockedQuietly = false;
  private vouchSavedAtMs = 0;
  private vouchDirty = false;
  private lastWarning = '';

  constructor(private readonly opts: ControllerOptions) {
    this.log = opts.logger.child({ module: 'controller' });
  }

  /** Loads the configuration (or prepares to build one) and starts probing. */
  async start(): Promise<void> {
    const stored = await this.opts.store.load();
    this.startedAtMs = this.opts.clock.monotonicMs();
    if (stored !== null) {
      this.configValue = await this.reconcileFlags(stored);
      this.log.info(
        { version: stored.version, primary: stored.primary.id, promoting: stored.promoting },
        'controller: configuration loaded',
      );
      this.publish(this.configValue);
      if (stored.promoting) this.promotingSinceMs = this.startedAtMs;
    } else if (this.opts.nodes === undefined) {
      throw new ConfigError(
        'controller: no stored configuration; give both members with --node ID=HOST:PORT (twice)',
      );
    } else {
      await this.exclusive(() => this.tryBuild());
    }
    this.timer = this.opts.clock.setInterval(() => void this.tick(), this.opts.probeIntervalMs);
    this.opts.admin.onConnectionLost?.((address) => this.connectionLost(address));
  }

  /**
   * --node flags with a stored configuration: they must name the stored members at their
   * stored addresses; with updateAddresses, new addresses for the same ids are stored.
   */
  private async reconcileFlags(stored: ClusterConfig): Promise<ClusterConfig> {
    const nodes = this.opts.nodes;
    if (nodes === undefined) return stored;
    const known = [stored.primary, stored.standby];
    const describe = (refs: NodeRef[]) => refs.map((r) => `${r.id}=${r.address}`).join(' ');
    const sameIds = nodes.every((n) => known.some((k) => k.id === n.id));
    const sameAddresses = nodes.every((n) =>
      known.some((k) => k.id === n.id && k.address === n.address),
    );
    if (sameIds && sameAddresses) return stored;
    if (!sameIds || this.opts.updateAddresses !== true) {
      throw new ConfigError(
        `controller: --node ${describe(nodes)} contradicts the stored configuration (${describe(known)}); ` +
          'start without --node to use it; to move a member to a new address give its id with the new address and --update-addresses; ' +
          "to replace a member's disk, just start it on the new disk (it joins as a new member)",
      );
    }
    const address = (ref: NodeRef): NodeRef => nodes.find((n) => n.id === ref.id) ?? ref;
    const next: ClusterConfig = {
      ...stored,
      primary: address(stored.primary),
      standby: address(stored.standby),
      version: stored.version + 1,
    };
    await this.opts.store.save(next);
    this.log.warn(
      { from: describe(known), to: describe([next.primary, next.standby]) },
      'controller: member addresses changed (--update-addresses)',
    );
    return next;
  }

  stop(): Promise<void> {
    if (this.timer !== null) this.opts.clock.clearInterval(this.timer);
    this.timer = null;
    if (this.soonTimer !== null) this.opts.clock.clearTimeout(this.soonTimer);
    this.soonTimer = null;
    return this.exclusive(() => this.saveVouched());
  }

  /** The configuration, or null while it is being built from the nodes. */
  get current(): ClusterConfig | null {
    return this.configValue;
  }

  /** The configuration's version and in-sync set, as metrics. */
  private publish(c: ClusterConfig): void {
    this.opts.metrics.configVersion.set(c.version);
    for (const ref of [c.primary, c.standby]) {
      this.opts.metrics.memberInSync.set({ node: ref.id }, c.inSync.includes(ref.id) ? 1 : 0);
    }
  }

  /** Where clients reach member `id`, as it last reported ('' when unknown). */
  clientAddress(id: string): string {
    return this.seen.get(id)?.status?.clientAddress ?? '';
  }

  /** Why the cluster does not serve right now ('' when a primary serves). */
  get blocked(): string {
    return this.blockedReason;
  }

  private get config(): ClusterConfig {
    const c = this.configValue;
    if (c === null) throw new UnavailableError(`controller: ${this.blockedReason}`);
    return c;
  }

  // ---- Requests from nodes and operators --------------------------------------------------

  /** A node at start: its report decides what it is to the cluster, then where it goes. */
  join(
    id: string,
    report: NodeReport,
  ): Promise<{ placement: NodePlacement; config: ClusterConfig }> {
    return this.exclusive(async () => {
      if (this.configValue === null) {
        if (!this.isMember(id)) throw this.notMember(id);
        this.reports.set(id, report);
        this.joined.add(id);
        await this.tryBuild();
      }
      const c = this.config;
      if (c.primary.id !== id && c.standby.id !== id) throw this.notMember(id);
      const stale = this.staleConfig([report]);
      if (stale !== null) {
        this.block(stale);
        throw new UnavailableError(`controller: ${stale}`);
      }
      if (report.clusterId !== '' && report.clusterId !== c.clusterId) {
        throw new DataDirError(
          `controller: ${id}'s data directory belongs to cluster ${report.clusterId}, this controller runs cluster ${c.clusterId}; give ${id} an empty data directory (it joins as a new member) or point it at its own controller`,
        );
      }
      await this.checkMember(id, report);
      this.note(id, report);
      const placement = this.place(id, report);
      // A primary placed now is starting now: its failover timeout counts from here, not from
      // before it went down (its first probe may take a reconnect backoff to get through).
      if (placement.role === 'primary') {
        this.primaryHealthyAtMs = this.opts.clock.monotonicMs();
        this.primaryPlacedAtMs = this.primaryHealthyAtMs;
      }
      return { placement, config: this.config };
    });
  }

  private isMember(id: string): boolean {
    return this.opts.nodes?.some((n) => n.id === id) ?? false;
  }

  private notMember(id: string): WrongRoleError {
    const ids = this.configValue
      ? [this.configValue.primary.id, this.configValue.standby.id]
      : (this.opts.nodes ?? []).map((n) => n.id);
    return new WrongRoleError(
      `controller: node ${id} is not a member of this cluster (${ids.join(', ')})`,
    );
  }

  /**
   * The configured primary goes back to serving when it is the directory the controller
   * knows, in sync, and its meta says it was primary or standalone (or its log is empty);
   * anything else starts as a standby (and is promoted by the probe loop when that is right).
   */
  private place(id: string, report: NodeReport): NodePlacement {
    const c = this.config;
    const inSync = c.inSync.includes(id);
    const base = { aloneApproved: false, clusterId: c.clusterId, ballot: c.ballot };
    if (id === c.primary.id && inSync && report.catchingUp && !c.inSync.includes(c.standby.id)) {
      // Its recovery cut a torn tail, and it acknowledged alone: the records cut may have been
      // acknowledged, and no other member holds them. Serving could hand their IDs out again.
      this.warnOnce(
        `tail-cut ${id}`,
        { node: id, lastIndex: report.lastIndex },
        `controller: ${id} acknowledged alone and its recovery cut a torn tail off its WAL: acknowledged records may be lost with no other copy; it does not serve until an operator forces a promotion with a skip-ahead past every ID it may have handed out`,
      );
      return { ...base, role: 'standby', catchingUp: true };
    }
    if (id === c.primary.id && inSync) {
      const tookPromotion =
        report.epochPrimary === id && report.epoch >= c.epoch && report.role === 'primary';
      const wasPrimary = report.role !== 'standby' || report.lastIndex === 0;
      if (c.promoting ? tookPromotion : wasPrimary) {
        return {
          ...base,
          role: 'primary',
          standby: c.standby,
          aloneApproved: !c.inSync.includes(c.standby.id),
          catchingUp: false,
        };
      }
    }
    return { ...base, role: 'standby', catchingUp: !inSync };
  }

  /** Primary → controller: its standby is gone; durable once this resolves. */
  removeFromInSync(req: InSyncChange): Promise<ClusterConfig> {
    return this.exclusive(async () => {
      this.checkPrimary(req);
      const id = this.configuredStandby(req.standbyId);
      const order = this.checkOrder(req);
      if (!this.config.inSync.includes(id)) {
        await this.change(order, `${req.primaryId}: ${id} already out of the in-sync set`);
        return this.config;
      }
      await this.change(
        { ...this.withInSync(this.config.inSync.filter((x) => x !== id)), ...order },
        `degrade: ${req.primaryId} lost standby ${id}`,
      );
      this.log.warn(
        { primary: req.primaryId, standby: id, epoch: req.epoch },
        "controller: standby removed from the in-sync set at the primary's request; the primary acknowledges alone",
      );
      return this.config;
    });
  }

  /**
   * Primary → controller: its standby holds everything acknowledged again. Verified, not
   * trusted: the controller probes the standby itself (the directory it knows, holding the
   * primary's acknowledged position) before it records it in sync.
   */
  addToInSync(req: InSyncChange): Promise<ClusterConfig> {
    return this.exclusive(async () => {
      this.checkPrimary(req);
      const id = this.configuredStandby(req.standbyId);
      const order = this.checkOrder(req);
      const c = this.config;
      if (c.inSync.includes(id)) {
        await this.change(order, `${req.primaryId}: ${id} already in sync`);
        return this.config;
      }
      const member = memberOf(c, id);
      let report: NodeReport;
      try {
        report = await this.opts.admin.status(c.standby.address);
      } catch (err) {
        throw new UnavailableError(
          `controller: cannot verify standby ${id} before adding it back: ${(err as Error).message}`,
        );
      }
      const why = this.addBackProblem(member, report, req.acknowledged);
      if (why !== null) {
        throw new UnavailableError(
          `controller: standby ${id} not added back to the in-sync set: ${why}`,
        );
      }
      const members = c.members.map((m) =>
        m.id === id ? { id, incarnation: report.incarnation, vouched: req.acknowledged } : m,
      );
      await this.change(
        { inSync: [...c.inSync, id], members, ...order },
        `standby ${id} caught up (verified)`,
      );
      // Only a serving primary adds its standby back: it is alive, whatever its last probe said.
      this.primaryHealthyAtMs = Math.max(this.primaryHealthyAtMs, this.opts.clock.monotonicMs());
      this.log.warn(
        {
          primary: req.primaryId,
          standby: id,
          epoch: req.epoch,
          at: formatPosition(req.acknowledged),
        },
        'controller: standby back in the in-sync set (verified: it holds every acknowledged record)',
      );
      return this.config;
    });
  }

  private addBackProblem(
    member: MemberRecord,
    report: NodeReport,
    acknowledged: Position,
  ): string | null {
    const c = this.config;
    if (member.incarnation !== '' && report.incarnation !== member.incarnation) {
      return `it runs on data directory ${shortId(report.incarnation)}, not ${shortId(member.incarnation)}`;
    }
    if (report.clusterId !== '' && report.clusterId !== c.clusterId)
      return 'it belongs to another cluster';
    if (report.role !== 'standby') return `it is ${report.role}`;
    if (!holds(report, acknowledged)) {
      return `its log ends at ${formatPosition(lastPosition(report))}, before ${formatPosition(acknowledged)}, which the primary acknowledged`;
    }
    return null;
  }

  /** Operator: the in-sync standby becomes primary, the primary its standby, nothing lost. */
  switchover(): Promise<ClusterConfig> {
    return this.exclusive(async () => {
      const { primary, standby } = this.config;
      if (this.config.promoting)
        throw new UnavailableError('controller: a promotion is in progress');
      const problem = promotionProblem(
        this.fresh(standby.id),
        memberOf(this.config, standby.id),
        this.config.inSync.includes(standby.id),
        this.config.clusterId,
      );
      if (problem !== null) {
        throw new UnavailableError(
          `controller: standby ${standby.id} cannot take over (${problem} at its last probe); no switchover`,
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
      if (await this.finishWithin(started)) return this.config;
      // The target did not serve: the stepped-down primary (caught up, in sync) serves again.
      const waited = Math.round(this.opts.clock.monotonicMs() - started);
      const why = `switchover: ${standby.id} did not serve within ${waited} ms`;
      this.log.error(
        { target: standby.id },
        `controller: ${why}; handing the primary back to ${primary.id}`,
      );
      const back = this.opts.clock.monotonicMs();
      await this.promote(
        primary,
        standby,
        'switchover',
        `${why}; handed back`,
        back,
        this.config.epoch,
        [primary.id],
      );
      const handedBack = await this.finishWithin(back);
      throw new SwitchoverFailedError(
        handedBack
          ? `controller: ${why}; ${primary.id} is primary again (epoch ${this.config.epoch})`
          : `controller: ${why}; handing the primary back to ${primary.id} has not finished yet (the controller keeps trying)`,
      );
    });
  }

  /** Retries the stored promotion until it is confirmed or promoteTimeoutMs has passed. */
  private async finishWithin(startedAtMs: number): Promise<boolean> {
    const limit = startedAtMs + this.promoteTimeoutMs();
    while (this.config.promoting) {
      if (this.opts.clock.monotonicMs() >= limit) return false;
      await sleep(this.opts.clock, this.opts.probeIntervalMs);
      await this.finishPromotion(startedAtMs);
    }
    return true;
  }

  /**
   * Operator: `id` becomes primary although it may not hold every acknowledged record. Its
   * epoch starts by raising every counter (and the floor for new namespaces) by skipAhead.
   */
  forcePromote(id: string, skipAhead: number): Promise<ClusterConfig> {
    return this.exclusive(async () => {
      if (!Number.isSafeInteger(skipAhead) || skipAhead < 1) {
        throw new InvalidArgumentError('controller: a forced promotion needs a skip-ahead >= 1');
      }
      const c = this.config;
      if (c.primary.id !== id && c.standby.id !== id) throw this.notMember(id);
      if (c.promoting) {
        throw new UnavailableError(
          `controller: a promotion of ${c.primary.id} is in progress; wait for it (tally status --controller) before forcing another`,
        );
      }
      const to = c.primary.id === id ? c.primary : c.standby;
      const from = c.primary.id === id ? c.standby : c.primary;
      let report: NodeReport;
      try {
        report = await this.opts.admin.status(to.address);
      } catch (err) {
        throw new UnavailableError(
          `controller: ${id} must be up to be promoted: ${(err as Error).message}`,
        );
      }
      if (report.role !== 'standby') {
        throw new WrongRoleError(
          `controller: ${id} is ${report.role} (${report.state}); only a standby can be promoted`,
        );
      }
      const members = c.members.map((m) =>
        m.id === id ? { id, incarnation: report.incarnation, vouched: lastPosition(report) } : m,
      );
      this.configValue = { ...c, members }; // stored with the promotion below
      const reason = `operator forced ${id} (skip-ahead ${skipAhead})`;
      const now = this.opts.clock.monotonicMs();
      await this.promote(to, from, 'forced', reason, now, report.epoch, [id], skipAhead);
      if (this.config.promoting) {
        throw new UnavailableError(
          `controller: forced promotion of ${id} stored but not confirmed yet; the controller keeps trying`,
        );
      }
      return this.config;
    });
  }

  /** The standby a primary names must be the configured one ('' = the configured one). */
  private configuredStandby(standbyId: string): string {
    const configured = this.config.standby.id;
    if (standbyId !== '' && standbyId !== configured) {
      throw new WrongRoleError(
        `controller: ${standbyId} is not the configured standby (${configured})`,
      );
    }
    return configured;
  }

  /**
   * A primary's in-sync requests apply in the order it sent them: one older than the last
   * applied (a late or duplicated message) is refused, or a stale "add back" could undo a
   * newer degrade while the primary acknowledges alone.
   */
  private checkOrder(req: InSyncChange): Pick<ClusterConfig, 'lastInSyncChange'> {
    const last = this.config.lastInSyncChange;
    const older =
      last !== null &&
      (req.epoch < last.epoch || (req.epoch === last.epoch && req.seq <= last.seq));
    if (older) {
      throw new WrongRoleError(
        `controller: in-sync request ${req.seq} of epoch ${req.epoch} is not newer than the last one applied (${last.seq} of epoch ${last.epoch}): refused`,
      );
    }
    return { lastInSyncChange: { epoch: req.epoch, seq: req.seq } };
  }

  /** Only the configured primary, on its known directory, at its epoch or later. */
  private checkPrimary(req: InSyncChange): void {
    const c = this.config;
    const member = memberOf(c, c.primary.id);
    const knownDir =
      req.primaryIncarnation === '' ||
      member.incarnation === '' ||
      req.primaryIncarnation === member.incarnation;
    if (c.primary.id !== req.primaryId || req.epoch < c.epoch || !knownDir) {
      throw new NotPrimaryError(
        `controller: ${c.primary.id} is the primary (epoch ${c.epoch}${c.promoting ? ', being promoted' : ''}), not ${req.primaryId} at epoch ${req.epoch}${knownDir ? '' : ' on an unknown data directory'}`,
      );
    }
  }

  // ---- Configuration changes ---------------------------------------------------------------

  /** Stores `changes` as the next version (durable before it takes effect). */
  private async change(changes: Partial<ClusterConfig>, why: string): Promise<void> {
    const current = this.config;
    const next: ClusterConfig = { ...current, ...changes, version: current.version + 1 };
    await this.opts.store.save(next);
    this.configValue = next;
    this.vouchDirty = false;
    this.vouchSavedAtMs = this.opts.clock.monotonicMs();
    this.publish(next);
    this.log.info({ version: next.version, why }, 'controller: configuration changed');
  }

  /** `inSync` as given; members left out of it lose their vouched position. */
  private withInSync(inSync: string[]): Partial<ClusterConfig> {
    const members = this.config.members.map((m) =>
      inSync.includes(m.id) ? m : { ...m, vouched: null },
    );
    return { inSync, members };
  }

  /**
   * A member stored a ballot this configuration's does not beat (a Fence of a controller that
   * crashed while creating its configuration, delivered late): every command to it would be
   * refused. This configuration's ballot goes above it; commands with a higher ballot are
   * obeyed (and stored). The late Fence's controller sent no command: it saved nothing.
   */
  private async raiseBallotAbove(id: string, report: NodeReport): Promise<void> {
    const ours = this.config.ballot;
    const theirs = report.ballot;
    if (ours === undefined || theirs === undefined || obeys(theirs, ours)) return;
    const ballot = {
      n: Math.max(ours.n, theirs.n) + 1,
      id: randomId(this.opts.random ?? systemRandom),
    };
    await this.change(
      { ballot },
      `ballot raised to ${formatBallot(ballot)}: ${id} stored ${formatBallot(theirs)}, which ${formatBallot(ours)} does not beat`,
    );
  }

  /**
   * A node whose directory is not the one recorded, or an in-sync member whose log is behind
   * what was acknowledged, is a new member: durably out of the in-sync set first. (And a node
   * that stored a ballot this configuration's does not beat gets a higher one first.)
   */
  private async checkMember(id: string, report: NodeReport): Promise<void> {
    await this.raiseBallotAbove(id, report);
    const c = this.config;
    const member = memberOf(c, id);
    const inSync = c.inSync.includes(id);
    const problem = memberProblem(member, report, inSync);
    if (problem === null) {
      if (member.incarnation === '') {
        const members = c.members.map((m) =>
          m.id === id ? { ...m, incarnation: report.incarnation } : m,
        );
        await this.change(
          { members },
          `${id} first seen (incarnation ${shortId(report.incarnation)})`,
        );
      }
      return;
    }
    const members = c.members.map((m) =>
      m.id === id ? { id, incarnation: report.incarnation, vouched: null } : m,
    );
    await this.change(
      { members, inSync: c.inSync.filter((x) => x !== id) },
      `${id} ${problem}: a new member, out of the in-sync set`,
    );
    this.log.warn(
      { node: id, incarnation: shortId(report.incarnation), wasInSync: inSync },
      `controller: ${id} ${problem}; it holds none of the history the controller vouches for: taken out of the in-sync set, placed as a catching-up standby, never promoted until it has caught up`,
    );
  }

  private async tryBuild(): Promise<void> {
    const nodes = this.opts.nodes as [NodeRef, NodeRef];
    const build = (reports: ReadonlyMap<string, NodeReport>) =>
      buildConfig(nodes, reports, this.opts.bootstrap === true, this.opts.random ?? systemRandom);
    const first = build(this.reports);
    if ('waiting' in first) {
      this.block(first.waiting, first.pending === true);
      return;
    }
    // Before it decides anything, every running member stores this configuration's ballot:
    // from then on no command of an older controller (whose configuration this one replaces)
    // is obeyed, and the members' reports, taken after every meta write under way, are final.
    const ballot = this.ballotToCreate();
    const fenced = await this.fenceMembers(nodes, ballot);
    if (typeof fenced === 'string') {
      this.block(fenced, true);
      return;
    }
    const built = build(fenced);
    if ('waiting' in built) {
      this.block(built.waiting, built.pending === true);
      return;
    }
    const config: ClusterConfig = { ...built.config, ballot };
    await this.opts.store.save(config);
    this.configValue = config;
    this.creating = null;
    this.joined.clear();
    this.reports.clear();
    this.publish(config);
    this.log.warn(
      {
        primary: config.primary.id,
        inSync: config.inSync,
        clusterId: config.clusterId,
        ballot: formatBallot(ballot),
      },
      `controller: configuration created: ${built.why}`,
    );
  }

  /** Above every ballot a member reported (and the one picked before, if still above). */
  private ballotToCreate(): Ballot {
    const reported = Math.max(0, ...[...this.reports.values()].map((r) => r.ballot?.n ?? 0));
    if (this.creating === null || this.creating.n <= reported) {
      this.creating = { n: reported + 1, id: randomId(this.opts.random ?? systemRandom) };
    }
    return this.creating;
  }

  /**
   * Has each running member store `ballot` (Admin.Fence); the reports to build from, or why
   * not yet. A member whose report came from its Join needs none: its process started since,
   * and its placement carries the ballot. --bootstrap: the second member only if it answers.
   */
  private async fenceMembers(
    nodes: [NodeRef, NodeRef],
    ballot: Ballot,
  ): Promise<Map<string, NodeReport> | string> {
    const reports = new Map(this.reports);
    for (const [i, n] of nodes.entries()) {
      if (this.joined.has(n.id) || (!reports.has(n.id) && i > 0)) continue;
      let report: NodeReport;
      try {
        report = await this.opts.admin.fence(n.address, ballot);
      } catch (err) {
        if (this.opts.bootstrap === true && i > 0) continue;
        return `no stored configuration: cannot give ${n.id} this controller's ballot yet: ${(err as Error).message}`;
      }
      const stored = report.ballot ?? noBallot;
      if (compareBallots(stored, ballot) !== 0) {
        // It stored a higher one: another controller created a configuration meanwhile.
        this.creating = null;
        this.reports.set(n.id, report); // the next ballot picked goes above it
        return `no stored configuration: ${n.id} holds ballot ${formatBallot(stored)}, above this controller's ${formatBallot(ballot)}; is another controller running for this cluster?`;
      }
      reports.set(n.id, report);
      this.reports.set(n.id, report);
    }
    return reports;
  }

  // ---- The probe loop -----------------------------------------------------------------------

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial.run(fn);
  }

  private seenOf(id: string): Seen {
    let seen = this.seen.get(id);
    if (seen === undefined) {
      seen = { okAtMs: 0, status: null, down: true, servingAtMs: 0, failedRound: 0 };
      this.seen.set(id, seen);
    }
    return seen;
  }

  /**
   * Asks `node` for its status for `round`. An answer after its round decided (a slow node)
   * still counts as a sign of life, but describes nothing the controller acts on.
   */
  private async probe(node: NodeRef, round: number): Promise<void> {
    const seen = this.seenOf(node.id);
    try {
      const status = await this.opts.admin.status(node.address);
      const now = this.opts.clock.monotonicMs();
      this.opts.metrics.probes.inc({ node: node.id, result: 'ok' });
      if (this.servesAsPrimary(node.id, status)) seen.servingAtMs = now;
      if (round !== this.round) return;
      seen.status = status;
      seen.okAtMs = now;
      seen.down = false;
    } catch {
      this.opts.metrics.probes.inc({ node: node.id, result: 'failed' });
      if (round !== this.round) return;
      seen.down = true;
      seen.failedRound = round;
    }
  }

  /** Is `id` the configured primary, and does `status` show it serving as one? */
  private servesAsPrimary(id: string, status: NodeReport): boolean {
    const c = this.configValue;
    if (c === null || c.primary.id !== id) return false;
    return primaryProblem(status, memberOf(c, id), this.opts.failoverTimeoutMs) === null;
  }

  /**
   * Probes every node for a new round. The configured primary gets one probe interval to
   * answer: if it has not by then (paused, cut off), it counts as not answering for this round,
   * which decides without it instead of waiting out the probe's deadline; its answer, if it
   * comes later, still shows it alive. The standby's answer is waited for, as before.
   */
  private async probeRound(nodes: NodeRef[]): Promise<void> {
    const round = ++this.round;
    const primaryId = this.configValue?.primary.id;
    let answered = false;
    let timer: TimerHandle | undefined;
    const late = new Promise<void>((resolve) => {
      timer = this.opts.clock.setTimeout(resolve, this.opts.probeIntervalMs);
    });
    await Promise.all(
      nodes.map((n) => {
        const probe = this.probe(n, round);
        if (n.id !== primaryId) return probe;
        return Promise.race([probe.then(() => void (answered = true)), late]);
      }),
    );
    this.opts.clock.clearTimeout(timer);
    if (primaryId !== undefined && !answered) this.seenOf(primaryId).down = true;
  }

  /** A fresh report of `id` (from its last probe or Join), or null when it is down. */
  private fresh(id: string): NodeReport | null {
    const s = this.seen.get(id);
    return s === undefined || s.down ? null : s.status;
  }

  private note(id: string, report: NodeReport): void {
    Object.assign(this.seenOf(id), {
      okAtMs: this.opts.clock.monotonicMs(),
      status: report,
      down: false,
    });
    this.noteEpoch(report);
  }

  /**
   * An open connection to a node dropped: a process that dies closes its sockets at once, so
   * probe now rather than at the next interval.
   */
  private connectionLost(address: string): void {
    const c = this.configValue;
    if (c === null || this.timer === null) return;
    if (address !== c.primary.address && address !== c.standby.address) return;
    this.log.info({ address }, 'controller: connection to a node dropped; probing now');
    void this.tick(true);
  }

  /**
   * The configured primary did not answer this round: is that a crash? Its port refusing a
   * fresh connection says nothing listens there (a paused process's kernel still accepts, a
   * cut link is silent). The standby, asked after that, must have lost its stream from the
   * primary too. Both together let the round fail over at once (decide()); a refusal the
   * standby has not seen yet is looked at again shortly.
   */
  private async checkRefusal(c: ClusterConfig): Promise<void> {
    this.refusal = null;
    const check = this.opts.admin.refusesConnections;
    const primary = this.seen.get(c.primary.id);
    // Only a probe that failed (refused, reset) this round: a silent one leaves it to the timeout.
    if (check === undefined || c.promoting || primary?.failedRound !== this.round) return;
    if (this.primaryHealthyAtMs === 0) return; // not seen serving since start: the start grace
    // A primary placed moments ago hands its port from the placeholder that held it while it
    // started to its server: a refusal then is no proof.
    if (this.opts.clock.monotonicMs() - this.primaryPlacedAtMs < this.opts.failoverTimeoutMs)
      return;
    const refused = await check.call(this.opts.admin, c.primary.address).catch(() => false);
    if (!refused) return;
    await this.probe(c.standby, this.round);
    const standby = this.fresh(c.standby.id);
    const standbySawReset = standby?.streamFromPrimary === false;
    this.refusal = { primaryId: c.primary.id, version: c.version, standbySawReset };
    // Looked at again shortly, while the timeout has not passed anyway (not for ever: a
    // refusal the standby never confirms is a firewall's, not a crash).
    const recent = this.opts.clock.monotonicMs() - this.primaryHealthyAtMs;
    if (!standbySawReset && standby !== null && recent < this.opts.failoverTimeoutMs) {
      this.probeSoon();
    }
  }

  private probeSoon(): void {
    if (this.soonTimer !== null || this.timer === null) return;
    const ms = Math.max(1, Math.floor(this.opts.probeIntervalMs / 5));
    this.soonTimer = this.opts.clock.setTimeout(() => {
      this.soonTimer = null;
      void this.tick(true);
    }, ms);
  }

  /** Why the primary is known to have crashed (null: no such evidence this round). */
  private crashEvidence(c: ClusterConfig, problem: string | null): string | null {
    const r = this.refusal;
    if (r === null || problem !== 'unreachable' || !r.standbySawReset) return null;
    if (r.primaryId !== c.primary.id || r.version !== c.version) return null;
    return `refused connections (nothing listens on its port) and ${c.standby.id}'s replication stream from it was reset`;
  }

  /** Remembers the highest epoch any node reported (written with the vouched positions). */
  private noteEpoch(report: NodeReport): void {
    const c = this.configValue;
    const epoch = Math.max(report.epoch, report.lastEpoch);
    if (c === null || epoch <= c.epochSeen) return;
    this.configValue = { ...c, epochSeen: epoch };
    this.vouchDirty = true;
  }

  /**
   * One probe round, then whatever it calls for (serialized with every other change). `now`:
   * asked for out of turn (a connection dropped); if a round is running, another follows it.
   */
  private async tick(now = false): Promise<void> {
    if (this.probing) {
      if (now) this.probeAgain = true;
      return;
    }
    this.probing = true;
    try {
      const c = this.configValue;
      const nodes = c === null ? (this.opts.nodes as NodeRef[]) : [c.primary, c.standby];
      const version = c?.version ?? 0;
      await this.probeRound(nodes);
      if (c !== null) await this.checkRefusal(c);
      // A change (a switchover, an approval) may have landed while probing: these answers
      // describe the old roles, so they decide nothing.
      await this.exclusive(async () => {
        if ((this.configValue?.version ?? 0) !== version) return;
        if (this.configValue === null) return this.buildFromProbes(nodes);
        await this.decide();
        await this.persistRefinements();
      });
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'controller: probe round failed');
    } finally {
      this.probing = false;
      if (this.probeAgain && this.timer !== null) {
        this.probeAgain = false;
        void this.tick(true);
      }
    }
  }

  private async buildFromProbes(nodes: NodeRef[]): Promise<void> {
    for (const n of nodes) {
      const s = this.fresh(n.id);
      if (s !== null) {
        this.reports.set(n.id, s);
        this.joined.delete(n.id);
      }
    }
    await this.tryBuild();
  }

  /**
   * A node that began (or follows) an epoch above the configuration's, of another primary than
   * the configured one, proves the stored configuration is older than the cluster (restored
   * from an old copy): acting on it could promote a node that lacks the history.
   */
  private staleConfig(reports: Array<NodeReport | null>): string | null {
    const c = this.config;
    for (const r of reports) {
      if (r === null || r.epoch <= c.epoch || r.epochPrimary === '') continue;
      if (r.epochPrimary === c.primary.id) continue; // the configured primary's own restarts
      return `the stored configuration is older than the cluster: a node holds epoch ${r.epoch} of ${r.epochPrimary}, the configuration knows epoch ${c.epoch} with ${c.primary.id} primary; give the controller its current cluster.json, or remove the file to rebuild it from the nodes`;
    }
    return null;
  }

  private async decide(): Promise<void> {
    const c = this.config;
    const stale = this.staleConfig([this.fresh(c.primary.id), this.fresh(c.standby.id)]);
    if (stale !== null) return this.block(stale);
    for (const ref of [c.primary, c.standby]) {
      const report = this.fresh(ref.id);
      if (report !== null) this.noteEpoch(report);
    }
    for (const ref of [c.primary, c.standby]) {
      const report = this.fresh(ref.id);
      if (report !== null) await this.checkMember(ref.id, report);
    }
    const now = this.opts.clock.monotonicMs();
    const primary = this.fresh(this.config.primary.id);
    const problem = primaryProblem(
      primary,
      memberOf(this.config, this.config.primary.id),
      this.opts.failoverTimeoutMs,
    );
    if (this.config.promoting) return this.decidePromoting(primary, now);
    if (problem === null && this.config.inSync.includes(this.config.primary.id)) {
      // When the probe answered, not when this round ended: failover timing counts from there.
      this.primaryHealthyAtMs = this.seen.get(this.config.primary.id)?.okAtMs ?? now;
      this.unblock();
      this.vouch(primary as NodeReport);
      return;
    }
    // A late answer as the serving primary counts too: slow is not silent.
    const healthy = Math.max(
      this.primaryHealthyAtMs,
      this.seenOf(this.config.primary.id).servingAtMs,
    );
    const since = healthy > 0 ? healthy : this.startedAtMs + this.startupGraceMs();
    const why = `primary ${this.config.primary.id} ${problem ?? 'is not in the in-sync set'}`;
    const crash = this.crashEvidence(this.config, problem);
    if (crash === null && now - since < this.opts.failoverTimeoutMs) return;
    const candidate = this.candidate();
    if (typeof candidate === 'string') {
      // A primary placed moments ago is beginning its epoch (waiting for its standby up to a
      // few seconds): a normal start, said at info level; a warning if it lasts.
      const starting =
        primary?.role === 'primary' &&
        primary.state === 'starting' &&
        now - this.primaryPlacedAtMs < this.startupGraceMs();
      this.block(
        `${why}, and no member that holds every acknowledged record can take over: ${candidate}`,
        starting,
      );
      return;
    }
    if (crash === null) {
      // An answer may be waiting behind this turn of the event loop (this process was busy):
      // let it in before calling the primary silent.
      await new Promise<void>((resolve) => this.opts.clock.runSoon(resolve));
      if (this.seenOf(this.config.primary.id).servingAtMs > since) return;
    }
    const { to, from, inSync } = candidate;
    const reason =
      crash === null
        ? `${why} for ${Math.round(now - since)} ms`
        : `primary ${this.config.primary.id} ${crash}`;
    const epochSeen = Math.max(primary?.epoch ?? 0, this.fresh(to.id)?.epoch ?? 0);
    await this.promote(to, from, 'failover', reason, now, epochSeen, inSync);
  }

  /**
   * Who may take over: the configured primary itself when it is a promotable standby (it
   * stepped down; both stay in sync), else the configured standby (alone in sync). A string
   * says why neither may.
   */
  private candidate(): { to: NodeRef; from: NodeRef; inSync: string[] } | string {
    const c = this.config;
    const why = (ref: NodeRef) =>
      promotionProblem(
        this.fresh(ref.id),
        memberOf(c, ref.id),
        c.inSync.includes(ref.id),
        c.clusterId,
      );
    const primaryWhy = why(c.primary);
    if (primaryWhy === null) return { to: c.primary, from: c.standby, inSync: c.inSync };
    const standbyWhy = why(c.standby);
    if (standbyWhy === null) return { to: c.standby, from: c.primary, inSync: [c.standby.id] };
    return `${c.standby.id} is ${standbyWhy}`;
  }

  /** A stored promotion: finish it; after promoteTimeoutMs, give it to another candidate. */
  private async decidePromoting(target: NodeReport | null, now: number): Promise<void> {
    const c = this.config;
    if (this.promotingSinceMs === 0) this.promotingSinceMs = now;
    if (target !== null) await this.resumePromotion(target);
    if (!this.config.promoting || now - this.promotingSinceMs < this.promoteTimeoutMs()) return;
    const other = c.standby;
    const problem = promotionProblem(
      this.fresh(other.id),
      memberOf(c, other.id),
      c.inSync.includes(other.id),
      c.clusterId,
    );
    if (problem !== null) {
      this.block(
        `promotion of ${c.primary.id} not confirmed, and ${other.id} cannot take over (${problem})`,
      );
      return;
    }
    const reason = `promotion of ${c.primary.id} not confirmed in ${Math.round(now - this.promotingSinceMs)} ms`;
    await this.promote(
      other,
      c.primary,
      'failover',
      reason,
      now,
      this.fresh(other.id)?.epoch ?? 0,
      [other.id],
    );
  }

  private startupGraceMs(): number {
    return this.opts.startupGraceMs ?? Math.max(5000, 2 * this.opts.failoverTimeoutMs);
  }

  private promoteTimeoutMs(): number {
    return this.opts.promoteTimeoutMs ?? Math.max(3000, 4 * this.opts.failoverTimeoutMs);
  }

  /**
   * Says once (log and metric) why the cluster does not serve, until that changes. `quiet`:
   * only the members' first reports are missing (a normal start): info, not a warning.
   */
  private block(reason: string, quiet = false): void {
    this.opts.metrics.notServing.set(1);
    // The same reason said quietly so far (a normal start) is warned about once it lasts.
    if (this.blockedReason === reason && (quiet || !this.blockedQuietly)) return;
    this.blockedReason = reason;
    this.blockedQuietly = quiet;
    if (quiet) this.log.info(`controller: ${reason}`);
    else this.warnOnce(reason, {}, `controller: the cluster does not serve: ${reason}`);
  }

  private unblock(): void {
    if (this.blockedReason === '') return;
    const fields = { was: this.blockedReason };
    if (this.blockedQuietly) this.log.info(fields, 'controller: a primary serves');
    else this.log.warn(fields, 'controller: a primary serves again');
    this.blockedReason = '';
    this.lastWarning = '';
    this.opts.metrics.notServing.set(0);
  }

  /** A reason is logged once, until the reason changes. */
  private warnOnce(key: string, fields: object, message: string): void {
    if (this.lastWarning === key) return;
    this.lastWarning = key;
    this.log.warn(fields, message);
  }

  /**
   * The serving primary's acknowledged position is held by it and by every in-sync standby
   * (their acks were waited for): the vouched positions move up to it, written at most every
   * vouchPersistMs (a restarted controller checks against the last one written).
   */
  private vouch(primary: NodeReport): void {
    const c = this.config;
    const at = primary.acknowledged;
    if (at.index === 0) return;
    let moved = false;
    const members = c.members.map((m) => {
      if (!c.inSync.includes(m.id) || (m.vouched !== null && comparePositions(m.vouched, at) >= 0))
        return m;
      moved = true;
      return { ...m, vouched: at };
    });
    if (moved) {
      this.configValue = { ...c, members };
      this.vouchDirty = true;
    }
  }

  /** Writes refinements (vouched positions, epochSeen) at most every vouchPersistMs. */
  private async persistRefinements(): Promise<void> {
    const due = this.opts.clock.monotonicMs() - this.vouchSavedAtMs;
    if (this.vouchDirty && due >= (this.opts.vouchPersistMs ?? vouchPersistMsDefault)) {
      await this.saveVouched();
    }
  }

  /**
   * Writes the vouched positions and the highest epoch seen (same version: they refine the
   * configuration, they change no role).
   */
  private async saveVouched(): Promise<void> {
    const c = this.configValue;
    if (c === null || !this.vouchDirty) return;
    await this.opts.store.save(c);
    this.vouchDirty = false;
    this.vouchSavedAtMs = this.opts.clock.monotonicMs();
  }

  /**
   * Stores the promotion of `to` (epoch above everything seen, `inSync` as given, `promoting`),
   * then asks `to` to promote; clears `promoting` once it has.
   */
  private async promote(
    to: NodeRef,
    from: NodeRef,
    kind: FailoverRecord['kind'],
    reason: string,
    decidedAtMs: number,
    epochSeen: number,
    inSync: string[],
    skipAhead = 0,
  ): Promise<void> {
    const epoch = Math.max(this.config.epoch, this.config.epochSeen, epochSeen) + 1;
    const record: FailoverRecord = {
      atUnixMs: this.opts.clock.nowUnixMs(),
      kind,
      fromNode: from.id,
      toNode: to.id,
      epoch,
      durationMs: 0,
      reason,
    };
    await this.change(
      {
        ...this.withInSync(inSync),
        epoch,
        epochSeen: epoch,
        primary: to,
        standby: from,
        promoting: true,
        forceSkipAhead: skipAhead,
        lastFailover: record,
      },
      `${kind}: promote ${to.id} to epoch ${epoch} (${reason})`,
    );
    this.promotingSinceMs = this.opts.clock.monotonicMs();
    this.log.warn(
      { from: from.id, to: to.id, epoch, reason },
      `controller: ${kind}: promoting ${to.id}`,
    );
    await this.finishPromotion(decidedAtMs);
  }

  private async resumePromotion(target: NodeReport): Promise<void> {
    const c = this.config;
    if (
      target.role === 'primary' &&
      target.epoch >= c.epoch &&
      target.epochPrimary === c.primary.id
    ) {
      // It already serves (the confirmation was lost): record it rather than promote again.
      await this.change(
        { epoch: target.epoch, promoting: false, forceSkipAhead: 0 },
        `${c.primary.id} already serves`,
      );
      this.log.warn(
        { primary: c.primary.id, epoch: target.epoch },
        'controller: new primary serving',
      );
      return;
    }
    const ownedByOther = target.epoch === c.epoch && target.epochPrimary !== c.primary.id;
    if (target.role === 'standby' && (target.epoch > c.epoch || ownedByOther)) {
      // It accepted a newer epoch from someone else meanwhile: promote above it.
      await this.change({ epoch: target.epoch + 1 }, "promotion: epoch raised above the node's");
    }
    await this.finishPromotion(this.opts.clock.monotonicMs());
  }

  private async finishPromotion(decidedAtMs: number): Promise<void> {
    const c = this.config;
    const alone = !c.inSync.includes(c.standby.id);
    await failpoint('controller.beforePromote', this.opts.clock);
    try {
      await this.opts.admin.promote(c.primary.address, c.epoch, c.standby.address, {
        aloneApproved: alone,
        skipAhead: c.forceSkipAhead,
        ballot: c.ballot,
      });
    } catch (err) {
      this.log.warn(
        { to: c.primary.id, epoch: c.epoch, err: (err as Error).message },
        'controller: promotion not confirmed yet; retrying',
      );
      return;
    }
    await failpoint('controller.afterPromote', this.opts.clock);
    const durationMs = Math.round(this.opts.clock.monotonicMs() - decidedAtMs);
    const last = c.lastFailover;
    await this.change(
      { promoting: false, forceSkipAhead: 0, lastFailover: last ? { ...last, durationMs } : null },
      `${c.primary.id} serves epoch ${c.epoch}`,
    );
    this.promotingSinceMs = 0;
    this.primaryHealthyAtMs = this.opts.clock.monotonicMs();
    this.unblock();
    this.opts.metrics.failovers.inc({ kind: last?.kind ?? 'failover' });
    this.opts.metrics.promoteSeconds.observe(durationMs / 1000);
    this.log.warn(
      { primary: c.primary.id, epoch: c.epoch, durationMs },
      'controller: new primary serving',
    );
  }
}
