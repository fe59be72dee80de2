/**
 * A counter node: data dir + log store + a role.
 *   standalone: group commit, acknowledged after the local fsync;
 *   primary:    group commit replicated to a standby, acknowledged once both fsynced;
 *   standby:    takes the primary's records (replica.ts), refuses allocations with the hint.
 * A term as primary or standalone (its committer, sender and in-sync tracker) is a PrimaryTerm
 * (primary-term.ts); placement at start is placement.ts; this file holds the lifecycle.
 * Start: lock dir → meta → snapshot → replay WAL → placement (the controller's, given what the
 * directory holds, or the --role flags) → by role. A standalone node begins a new epoch at
 * once; a primary proposes the next epoch (with a new nonce) to its standby and persists it
 * only once the standby accepted it, so it never writes in an epoch that someone else owns. A
 * node never writes in an epoch it used before a restart. Every meta write goes through one
 * MetaStore.
 */
import type { Logger } from 'pino';
import { rethrowIfAssertion } from '../core/assert';
import {
  compareBallots,
  formatBallot,
  higherBallot,
  noBallot,
  obeys,
  type Ballot,
} from '../core/ballot';
import {
  systemClock,
  systemRandom,
  type Clock,
  type Random,
  type TimerHandle,
} from '../core/clock';
import {
  ConfigError,
  CounterExhaustedError,
  InvalidArgumentError,
  NotPrimaryError,
  StaleEpochError,
  StorageFatalError,
  UnavailableError,
  WrongRoleError,
  type TallyError,
} from '../core/errors';
import { randomId } from '../core/ids';
import {
  checkpointBytesDefault,
  idMax,
  checkpointRecordsDefault,
  segmentSizeBytesDefault,
  segmentSizeBytesMax,
  segmentSizeBytesMin,
} from '../core/limits';
import { validateAllocation } from '../state/counters';
import {
  type Channel,
  type ChannelEvents,
  type ToPrimary,
  type ToStandby,
} from '../replication/protocol';
import { Receiver } from '../replication/receiver';
import type { Sender } from '../replication/sender';
import { NodeStorage, type Storage } from '../wal/storage';
import type { Committer } from './committer';
import { loadMeta, lockDataDir, withLed, type DirLock, type Meta } from './data-dir';
import type { InSyncTracker } from './in-sync';
import { MetaStore } from './meta-store';
import type { NodeOptions } from './node-options';
import { PrimaryTerm, type PrimaryHost, type Term } from './primary-term';
import { applyPlacement, checkRoleChange, joinReport } from './placement';
import { LogStore } from './log-store';
import { ReplicaLogAdapter } from './replica';
import type {
  AllocateCallback,
  CheckpointInfo,
  CounterNode,
  NodeState,
  NodeStatus,
  RoleState,
  Placement,
  PromoteOptions,
  PromoteResult,
  ReplicationStatus,
  Role,
} from './types';

export type { NodeOptions } from './node-options';

/** How long a step-down waits for the standby to acknowledge what was written. */
const stepDownWaitMsDefault = 2000;
/** How long close() waits for the standby to acknowledge batches already written. */
const closeAckGraceMs = 2000;

export async function openNode(opts: NodeOptions): Promise<CounterNode> {
  const segmentSizeBytes = opts.segmentSizeBytes ?? segmentSizeBytesDefault;
  const sizeOk = Number.isSafeInteger(segmentSizeBytes) && segmentSizeBytes >= segmentSizeBytesMin;
  if (!sizeOk || segmentSizeBytes > segmentSizeBytesMax) {
    throw new ConfigError(
      `node: segment size must be an integer in ${segmentSizeBytesMin}..${segmentSizeBytesMax} bytes`,
    );
  }
  const role = opts.role ?? 'standalone';
  const noStandby = opts.standby === undefined || opts.dial === undefined;
  if (opts.place === undefined && role === 'primary' && noStandby) {
    throw new ConfigError('node: a primary needs a standby address (--standby HOST:PORT)');
  }
  const lock = opts.lock === false ? null : lockDataDir(opts.dataDir);
  try {
    return await TallyNode.start(opts, segmentSizeBytes, lock);
  } catch (err) {
    lock?.close();
    throw err;
  }
}

/** A forced promotion must skip ahead (and stay below the highest ID); only a forced one may. */
function checkSkipAhead(force: boolean, skipAhead: number, highestReserved: number): void {
  if (force && !(Number.isSafeInteger(skipAhead) && skipAhead >= 1)) {
    throw new InvalidArgumentError(
      'node: a forced promotion needs a skip-ahead >= 1 (above anything the lost history can have acknowledged)',
    );
  }
  if (!force && skipAhead !== 0) {
    throw new InvalidArgumentError('node: a skip-ahead is only for a forced promotion');
  }
  if (highestReserved + skipAhead > idMax) {
    throw new CounterExhaustedError(
      `node: a skip-ahead of ${skipAhead} would take a counter past its maximum ID ${idMax}`,
    );
  }
}

export class TallyNode implements CounterNode {
  private stateValue: NodeState = 'starting';
  private readonly log: Logger;
  /** The current term as primary (or standalone), null as a standby. */
  private primary: PrimaryTerm | null = null;
  private receiver: Receiver | null = null;
  private replica: ReplicaLogAdapter | null = null;
  /** Set while the node turns from primary into standby (step-down or rejoin). */
  private demoting = false;
  /**
   * Promotions under way, by epoch (calls in progress; the controller retries a promotion, so
   * one epoch may have several): Status reports the highest.
   */
  private readonly promotions = new Map<number, number>();
  /** Where clients reach this node: --advertise, known once the server is bound. */
  private clientAddress = '';
  private resolveFailed!: (err: Error) => void;
  readonly failed: Promise<Error>;
  readonly random: Random;

  private constructor(
    readonly opts: NodeOptions,
    readonly storage: Storage,
    readonly clock: Clock,
    readonly store: LogStore,
    private readonly lock: DirLock | null,
    readonly metaStore: MetaStore,
    private readonly segmentSizeBytes: number,
  ) {
    this.log = opts.logger.child({ module: 'node' });
    this.random = opts.random ?? systemRandom;
    this.failed = new Promise((resolve) => (this.resolveFailed = resolve));
    opts.metrics.onScrape.refresh = () => this.refreshLagGauges();
    void Promise.resolve(opts.clientAddress ?? opts.advertiseAddress ?? '').then(
      (a) => (this.clientAddress = a),
    );
  }

  get meta(): Readonly<Meta> {
    return this.metaStore.current;
  }

  private get committer(): Committer | null {
    return this.primary?.committer ?? null;
  }

  private get sender(): Sender | null {
    return this.primary?.sender ?? null;
  }

  private get inSync(): InSyncTracker | null {
    return this.primary?.inSync ?? null;
  }

  /** A new term as primary (or standalone), with this node as its host. */
  private newTerm(): PrimaryTerm {
    const host: PrimaryHost = {
      opts: this.opts,
      store: this.store,
      metaStore: this.metaStore,
      clock: this.clock,
      random: this.random,
      log: this.log,
      segmentSizeBytes: this.segmentSizeBytes,
      starting: () => this.stateValue === 'starting',
      stillStarting: () => this.stateValue === 'starting' && this.receiver === null,
      nowServing: () => {
        if (this.stateValue === 'starting') this.stateValue = 'serving';
      },
      isServing: () => this.stateValue === 'serving',
      fail: (err) => this.fail(err),
      fence: (err) => this.fence(err),
      becomeStandby: (reason) => void this.becomeStandby(reason),
      beginFailed: (err) => this.beginFailed(err),
    };
    this.primary = new PrimaryTerm(host);
    return this.primary;
  }

  static async start(
    opts: NodeOptions,
    segmentSizeBytes: number,
    lock: DirLock | null,
  ): Promise<TallyNode> {
    const storage = opts.storage ?? new NodeStorage();
    const clock = opts.clock ?? systemClock;
    const requested = opts.role ?? 'standalone';
    const log = opts.logger.child({ module: 'node' });
    await storage.mkdir(opts.dataDir);
    // Under a controller a new directory waits as a standby until the controller places it.
    const loaded = await loadMeta(
      storage,
      opts.dataDir,
      opts.id,
      opts.place ? 'standby' : requested,
      opts.random,
    );
    if (opts.place === undefined) checkRoleChange(loaded, requested, opts.dataDir, log);
    if (loaded.snapshotInstall) {
      log.warn('node: a snapshot install was interrupted; discarding the log to catch up again');
      await LogStore.discard(storage, opts.dataDir);
    }
    let node: TallyNode | null = null;
    const metaStore = new MetaStore(storage, opts.dataDir, loaded);
    const { store, lastEpoch } = await LogStore.open({
      storage,
      dataDir: opts.dataDir,
      segmentSizeBytes,
      logger: opts.logger,
      metrics: opts.metrics,
      clock,
      requireExisting: loaded.epoch > 0 && !loaded.snapshotInstall,
      checkpointRecords: opts.checkpointRecords ?? checkpointRecordsDefault,
      checkpointBytes: opts.checkpointBytes ?? checkpointBytesDefault,
      onFatal: (err) => node?.fail(err),
      // The records cut may have been acknowledged (a disk may lose a tail it called durable):
      // until this log is compared with the other member's, it is not promoted (catching up),
      // it does not go on alone as primary, and its standby's records are not cut (tailCut).
      beforeTornTailCut: async () => {
        await metaStore.set({ catchingUp: true, tailCut: true });
        log.warn(
          'node: recovery cuts a torn WAL tail; the records cut may have been acknowledged, so this node does not serve without the other member, which holds them, until their logs are compared',
        );
      },
    });
    try {
      const placement: Placement = opts.place
        ? await opts.place(joinReport(metaStore.current, store))
        : { role: requested, standby: opts.standby };
      await applyPlacement(metaStore, placement, opts.dataDir);
      node = new TallyNode(opts, storage, clock, store, lock, metaStore, segmentSizeBytes);
      await node.startRole(placement, Math.max(lastEpoch, metaStore.current.epoch) + 1);
    } catch (err) {
      await store.close();
      throw err;
    }
    return node;
  }

  /** A standalone node serves when this resolves; a primary once its standby accepted. */
  private async startRole(placement: Placement, nextEpoch: number): Promise<void> {
    const { role } = placement;
    this.setRoleGauge(role);
    const skipAhead = this.meta.pendingSkipAhead ?? 0; // a forced promotion that crashed
    const term: Term = {
      epoch: nextEpoch,
      nonce: randomId(this.random),
      persisted: false,
      skipAhead,
    };
    if (role === 'standalone') return this.newTerm().beginEpoch(term, null);
    if (role === 'primary') {
      const alone = this.opts.controller !== undefined && placement.aloneApproved === true;
      this.newTerm().start(term, placement.standby as string, placement.standbyId ?? '', alone);
      return;
    }
    this.startStandby();
  }

  private beginFailed(err: unknown): void {
    rethrowIfAssertion(err);
    this.fail(new StorageFatalError(`node: cannot begin epoch: ${(err as Error).message}`));
  }

  private startStandby(): void {
    this.replica = new ReplicaLogAdapter(this);
    this.store.noteAcknowledged(0); // checkpoints only what the primary has acknowledged
    this.receiver = new Receiver(this.replica, this.opts.logger.child({ module: 'replication' }), {
      rejected: (reason) => this.opts.metrics.replicationRejected.inc({ reason }),
    });
    this.stateValue = 'serving';
    this.log.info(
      {
        epoch: this.meta.epoch,
        lastIndex: this.store.lastIndex,
        catchingUp: !!this.meta.catchingUp,
      },
      'node: serving as standby',
    );
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
    if (this.stateValue !== 'serving' || this.committer === null) return cb(this.refusal());
    this.committer.submit(namespace, count, deadlineUnixMs, cb);
  }

  private refusal(): TallyError {
    if (this.receiver !== null) {
      const address = this.meta.primaryAddress || undefined;
      return new NotPrimaryError(
        `node: ${this.opts.id} is a standby; allocate on the primary${address ? ` at ${address}` : ''}`,
        address,
      );
    }
    if (this.stateValue === 'fenced') {
      return new NotPrimaryError(
        `node: ${this.opts.id} was deposed: its standby accepted a newer epoch; allocate on the new primary`,
      );
    }
    if (this.stateValue === 'starting' && this.sender !== null) {
      return new UnavailableError(
        `node: primary is waiting for its standby (${this.sender.state}); not serving yet`,
      );
    }
    return new UnavailableError(`node: not serving (${this.stateValue})`);
  }

  checkpoint(): Promise<CheckpointInfo> {
    if (this.stateValue === 'failed' || this.stateValue === 'closed') {
      return Promise.reject(
        new UnavailableError(`node: cannot checkpoint while ${this.stateValue}`),
      );
    }
    // On a standby, never while the receiver truncates or installs a snapshot.
    if (this.replica !== null) return this.replica.exclusive(() => this.store.checkpoint());
    return this.store.checkpoint();
  }

  async promote(epoch: number, options: PromoteOptions = {}): Promise<PromoteResult> {
    const { standby, force = false } = options;
    const skipAhead = options.skipAhead ?? 0;
    const replica = this.replica;
    const own = this.meta.epochPrimary === this.opts.id && this.meta.epoch === epoch;
    if (replica === null && own && this.meta.role !== 'standby' && !this.demoting) {
      // A repeated promotion (the controller resuming one it decided): already done.
      return { epoch, role: this.meta.role, lastIndex: this.store.lastIndex };
    }
    if (replica === null || this.receiver === null) {
      throw new WrongRoleError(
        `node: ${this.opts.id} is ${this.meta.role} (${this.stateValue}); only a standby can be promoted`,
      );
    }
    if (standby !== undefined && this.opts.dial === undefined) {
      throw new ConfigError('node: this node cannot dial a standby');
    }
    checkSkipAhead(force, skipAhead, this.store.state.highestReserved());
    // Reported in Status until done: a controller rebuilding its configuration waits for it.
    this.promotions.set(epoch, (this.promotions.get(epoch) ?? 0) + 1);
    try {
      return await replica.exclusive(() => this.promoteStandby(epoch, options));
    } finally {
      const left = (this.promotions.get(epoch) ?? 1) - 1;
      if (left > 0) this.promotions.set(epoch, left);
      else this.promotions.delete(epoch);
    }
  }

  async storeBallot(ballot: Ballot): Promise<Ballot> {
    const m = await this.metaStore.update((current) =>
      compareBallots(ballot, current.ballot ?? noBallot) > 0 ? { ballot } : null,
    );
    return m.ballot ?? noBallot;
  }

  /** Under the log's exclusive section: persist the epoch (the fence), then serve. */
  private async promoteStandby(epoch: number, options: PromoteOptions): Promise<PromoteResult> {
    const { standby, aloneApproved = false, force = false } = options;
    if (this.stateValue !== 'serving') {
      throw new UnavailableError(`node: cannot promote while ${this.stateValue}`);
    }
    const role: Role = standby === undefined ? 'standalone' : 'primary';
    // The skip is stored with the epoch: a crash before the epoch-start record is durable
    // must not lose it (the next epoch this node begins carries it).
    const skipAhead = Math.max(options.skipAhead ?? 0, this.meta.pendingSkipAhead ?? 0);
    const term: Term = { epoch, nonce: randomId(this.random), persisted: true, skipAhead };
    try {
      await this.metaStore.update((m) => {
        const highest = Math.max(m.epoch, this.store.highestEpoch);
        if (!(epoch > highest)) {
          throw new StaleEpochError(
            `node: promote to epoch ${epoch} refused: epoch ${highest} (primary ${m.epochPrimary ?? '?'}) is already accepted or in the log here`,
          );
        }
        const stored = m.ballot ?? noBallot;
        if (options.ballot !== undefined && !obeys(stored, options.ballot)) {
          throw new StaleEpochError(
            `node: promote to epoch ${epoch} refused: it comes from an older controller (ballot ${formatBallot(options.ballot)}; this node obeys ${formatBallot(stored)} and later)`,
          );
        }
        if (options.ballot === undefined && stored.n > 0) {
          // A controller's configuration from before ballots (its commands carry none), or an
          // operator promoting a controller's member directly: both go around the controller.
          throw new StaleEpochError(
            `node: promote to epoch ${epoch} refused: this node follows a controller (ballot ${formatBallot(stored)}) and the promotion carries no ballot; promote through the controller (tally promote --controller HOST:PORT --node ID …)`,
          );
        }
        if (m.catchingUp && !force) {
          throw new WrongRoleError(
            `node: ${this.opts.id} is still catching up (at ${this.store.lastIndex}); promoting it would lose acknowledged IDs (an operator may force it with a skip-ahead)`,
          );
        }
        return {
          epoch,
          epochPrimary: this.opts.id,
          epochNonce: term.nonce,
          role,
          catchingUp: undefined,
          // Forced: the skip-ahead puts every ID past whatever a cut tail held.
          tailCut: undefined,
          led: withLed(m, epoch),
          pendingSkipAhead: skipAhead > 0 ? skipAhead : undefined,
          ballot: higherBallot(stored, options.ballot),
        };
      });
    } catch (err) {
      rethrowIfAssertion(err);
      if (err instanceof StaleEpochError || err instanceof WrongRoleError) throw err; // refused
      // Unknown whether the new epoch is on disk: stop rather than serve either epoch.
      this.fail(
        new StorageFatalError(`node: promote: meta not written: ${(err as Error).message}`),
      );
      throw err;
    }
    // The fence: from here the old primary's appends are refused and it cannot get acks.
    (this.receiver as Receiver).closeAll(
      new StaleEpochError(`node: ${this.opts.id} was promoted to epoch ${epoch}`),
    );
    this.receiver = null;
    this.replica = null;
    this.store.noteAcknowledged(null); // its log is the authority now
    this.stateValue = 'starting';
    this.setRoleGauge(role);
    this.log.warn(
      { epoch, standby: standby ?? null, force, skipAhead: term.skipAhead },
      force ? 'node: promoted by force' : 'node: promoted',
    );
    if (standby === undefined) await this.newTerm().beginCommitter(term, null);
    else this.newTerm().start(term, standby, '', aloneApproved);
    return { epoch, role, lastIndex: this.store.lastIndex };
  }

  openReplication(channel: Channel<ToPrimary>, peer: string): ChannelEvents<ToStandby> {
    if (this.receiver !== null) return this.receiver.open(channel, peer);
    // Not a standby. A Hello from an epoch older than this node's is told so: that primary
    // learns it was deposed (fenced); anything else is refused as sent to the wrong role.
    let answered = false;
    return {
      onMessage: (message) => {
        if (answered) return;
        answered = true;
        const held = this.meta.epoch;
        const stale =
          message.kind === 'hello' &&
          (message.epoch < held ||
            (message.epoch === held && message.primaryId !== this.meta.epochPrimary));
        const why = `node: ${this.opts.id} is ${this.meta.role} (${this.stateValue}) at epoch ${held} of ${this.meta.epochPrimary ?? '?'}`;
        channel.close(
          stale
            ? new StaleEpochError(`${why}; epoch ${message.epoch} is stale`)
            : new WrongRoleError(`${why}, not a standby`),
        );
      },
      onClose: () => undefined,
    };
  }

  private fence(err: StaleEpochError): void {
    if (this.stateValue === 'serving' || this.stateValue === 'starting') this.stateValue = 'fenced';
    this.setRoleGauge('fenced');
    this.log.error({ err: err.message }, 'node: fenced; acknowledging nothing more');
    this.committer?.halt(
      new NotPrimaryError(`node: ${this.opts.id} was deposed (${err.message}); not acknowledged`),
    );
    // With a controller the cluster has a new primary to follow: rejoin it as its standby.
    if (this.opts.controller !== undefined) void this.becomeStandby(err.message);
  }

  async stepDown(
    epoch: number,
    waitMs = stepDownWaitMsDefault,
  ): Promise<{ epoch: number; lastIndex: number }> {
    const committer = this.committer;
    if (this.meta.role !== 'primary' || committer === null || this.stateValue !== 'serving') {
      throw new WrongRoleError(
        `node: ${this.opts.id} is ${this.meta.role} (${this.stateValue}); only a serving primary can step down`,
      );
    }
    if (epoch !== 0 && epoch !== this.meta.epoch) {
      throw new StaleEpochError(
        `node: step-down for epoch ${epoch} refused: this node is primary of epoch ${this.meta.epoch}`,
      );
    }
    if (committer.alone || (this.inSync !== null && this.inSync.state !== 'in-sync')) {
      throw new UnavailableError(
        `node: ${this.opts.id} cannot step down: its standby is not in sync`,
      );
    }
    committer.stop(new UnavailableError('node: stepping down for a switchover; retry shortly'));
    let timer: TimerHandle | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = this.clock.setTimeout(() => resolve(true), waitMs);
    });
    const late = await Promise.race([committer.whenIdle().then(() => false), timedOut]);
    this.clock.clearTimeout(timer);
    if (late) {
      committer.resume();
      throw new UnavailableError(
        `node: step-down cancelled: the standby did not acknowledge within ${waitMs} ms`,
      );
    }
    const lastIndex = this.store.lastIndex;
    // Everything it wrote is acknowledged by the standby, so it holds all the standby holds:
    // promotable again at once (the controller may hand the primary back if it fails now).
    await this.becomeStandby('planned switchover', false);
    return { epoch: this.meta.epoch, lastIndex };
  }

  rejoinAsStandby(reason: string): Promise<void> {
    return this.becomeStandby(reason);
  }

  /**
   * A primary (serving, starting or fenced) turns into a standby of whoever is primary now:
   * nothing more is acknowledged here, and the new primary's log matching truncates whatever
   * this node wrote that was never acknowledged (rewind) before it catches up.
   */
  private async becomeStandby(reason: string, catchingUp = true): Promise<void> {
    if (this.receiver !== null || this.demoting) return;
    if (this.stateValue === 'failed' || this.stateValue === 'closed') return;
    if (this.stateValue === 'draining') return;
    this.demoting = true;
    try {
      const committer = this.committer;
      committer?.halt(
        new NotPrimaryError(`node: ${this.opts.id} stepped down (${reason}); not acknowledged`),
      );
      await committer?.whenIdle();
      this.primary?.stop();
      this.primary = null;
      const stopping = (): boolean => {
        const now = this.stateValue as NodeState; // closed or failed while awaiting
        return now === 'draining' || now === 'failed' || now === 'closed';
      };
      await this.metaStore.update(() =>
        stopping() ? null : { role: 'standby', catchingUp: catchingUp || undefined },
      );
      if (stopping()) return;
      this.opts.metrics.degraded.set(0);
      this.setRoleGauge('standby');
      this.log.warn({ reason, epoch: this.meta.epoch }, 'node: rejoining as a standby');
      this.startStandby();
    } catch (err) {
      rethrowIfAssertion(err);
      this.fail(
        new StorageFatalError(`node: could not become a standby: ${(err as Error).message}`),
      );
    } finally {
      this.demoting = false;
    }
  }

  private setRoleGauge(role: Role | 'fenced'): void {
    this.opts.metrics.role.reset();
    this.opts.metrics.role.set({ role }, 1);
    this.opts.metrics.epoch.set(this.meta.epoch);
  }

  private replicationStatus(): ReplicationStatus | null {
    const now = this.clock.monotonicMs();
    if (this.sender !== null) {
      const lag = this.sender.lag(now);
      return {
        peer: this.primary?.standbyTarget ?? '',
        state: this.sender.state,
        ackIndex: this.sender.ackedIndex,
        lagRecords: lag.records,
        lagSeconds: lag.seconds,
        catchingUp: false,
      };
    }
    if (this.replica !== null) return this.replica.status(this.receiver?.activeSession != null);
    return null;
  }

  private refreshLagGauges(): void {
    const status = this.replicationStatus();
    const { metrics } = this.opts;
    metrics.replicationLagRecords.set(status?.lagRecords ?? 0);
    metrics.replicationLagSeconds.set(status?.lagSeconds ?? 0);
    const catchUp = this.sender?.catchUp();
    const remaining = catchUp ? Math.max(0, catchUp.targetIndex - catchUp.standbyIndex) : 0;
    metrics.replicationCatchUpRemainingRecords.set(remaining);
    metrics.catchingUp.set(this.replica !== null && status?.catchingUp === true ? 1 : 0);
  }

  roleState(): RoleState {
    return { role: this.meta.role, state: this.stateValue, epoch: this.meta.epoch };
  }

  status(): NodeStatus {
    const { store } = this;
    const acknowledged = this.primary?.acknowledged() ?? { index: 0, epoch: 0 };
    return {
      nodeId: this.opts.id,
      role: this.meta.role,
      state: this.stateValue,
      epoch: this.meta.epoch,
      epochPrimary: this.meta.epochPrimary ?? '',
      lastIndex: store.lastIndex,
      namespaces: store.state.durableEntries().map(([name, lastId]) => ({ name, lastId })),
      walBytes: store.wal.diskBytes,
      walSegments: store.wal.segmentCount,
      checkpointIndex: store.checkpointIndex,
      checkpointUnixMs: store.checkpointUnixMs,
      dataDir: this.opts.dataDir,
      replication: this.replicationStatus(),
      incarnation: this.meta.incarnation,
      clusterId: this.meta.clusterId ?? '',
      lastEpoch: store.lastEpoch,
      acknowledgedIndex: acknowledged.index,
      acknowledgedEpoch: acknowledged.epoch,
      writeStallMs: Math.round(this.committer?.writeStallMs(this.clock.monotonicMs()) ?? 0),
      idFloor: store.state.floor,
      clientAddress: this.clientAddress,
      promotingEpoch: Math.max(0, ...this.promotions.keys()),
      tailCut: this.meta.tailCut === true,
      ballot: this.meta.ballot ?? noBallot,
    };
  }

  noteInSyncSet(inSync: readonly string[]): void {
    this.inSync?.noteInSyncSet(inSync);
  }

  fail(err: TallyError): void {
    if (this.stateValue === 'failed') return;
    this.stateValue = 'failed';
    this.inSync?.stop();
    this.log.fatal({ err: err.message }, 'node: storage failure; stopping (never retrying fsync)');
    this.committer?.halt(
      new UnavailableError('node: storage failed; this node has stopped', { cause: err }),
    );
    this.sender?.stop();
    this.receiver?.closeAll(new UnavailableError('node: storage failed; this node has stopped'));
    this.resolveFailed(
      err instanceof StorageFatalError ? err : new StorageFatalError(err.message, { cause: err }),
    );
  }

  async close(): Promise<void> {
    if (this.stateValue === 'closed') return;
    if (this.stateValue !== 'failed') this.stateValue = 'draining';
    this.receiver?.closeAll(new UnavailableError('node: draining'));
    const committer = this.committer;
    if (committer) {
      committer.stop(new UnavailableError('node: draining'));
      // Batches already written wait a little for the standby's ack, then are refused.
      let timer: TimerHandle | undefined;
      const grace = new Promise<void>(
        (resolve) => (timer = this.clock.setTimeout(resolve, closeAckGraceMs)),
      );
      await Promise.race([committer.whenIdle(), grace]);
      this.clock.clearTimeout(timer);
      committer.halt(new UnavailableError('node: draining; not acknowledged'));
      await committer.whenIdle();
    }
    this.inSync?.stop();
    this.sender?.stop();
    await this.replica?.exclusive(() => Promise.resolve());
    await this.store.close();
    // No meta write may land after the directory is unlocked (a rejoin begun before close).
    await this.metaStore.update(() => null).catch(() => undefined);
    this.lock?.close();
    this.stateValue = 'closed';
    this.log.info({ lastIndex: this.store.lastIndex }, 'node: closed');
  }
}
