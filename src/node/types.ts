/**
 * The contract between a counter node and everything above it (gRPC server, CLI, tests).
 */
import type { Ballot } from '../core/ballot';
import type { TallyError } from '../core/errors';
import type { Channel, ChannelEvents, ToPrimary, ToStandby } from '../replication/protocol';

export type Role = 'standalone' | 'primary' | 'standby';
/**
 * `starting`: recovering, or a primary waiting for its standby to accept the epoch;
 * `fenced`: a primary whose standby accepted a newer epoch (it acknowledges nothing more).
 */
export type NodeState = 'starting' | 'serving' | 'fenced' | 'draining' | 'closed' | 'failed';

export interface AllocateResult {
  /** IDs first .. first+count-1 are now durable and belong to this caller. */
  first: number;
  count: number;
  epoch: number;
  /** WAL index of the record that made the allocation durable. */
  index: number;
}

export interface RoleState {
  role: Role;
  state: NodeState;
  epoch: number;
}

/** Called exactly once per allocate(): with an error, or with the durable result. */
export type AllocateCallback = (err: TallyError | null, result?: AllocateResult) => void;

export interface CheckpointInfo {
  /** The index the snapshot covers (written, or to be written when `scheduled`). */
  index: number;
  segmentsRemoved: number;
  durationUs: number;
  /**
   * A standby whose last records the primary has not yet confirmed acknowledged: the snapshot
   * of `index` is captured and written once an Append's commit index covers it (the primary
   * sends it with its next records). Nothing is written yet.
   */
  scheduled?: boolean;
  /** With `scheduled`: what the primary has confirmed acknowledged so far. */
  acknowledgedIndex?: number;
}

export interface NodeStatus {
  nodeId: string;
  role: Role;
  state: NodeState;
  epoch: number;
  lastIndex: number;
  /** The highest ID acknowledged per namespace, sorted by name. */
  namespaces: Array<{ name: string; lastId: number }>;
  walBytes: number;
  walSegments: number;
  checkpointIndex: number;
  checkpointUnixMs: number;
  dataDir: string;
  /** The primary that owns `epoch`. */
  epochPrimary: string;
  replication: ReplicationStatus | null;
  /** The data directory's identity, and the cluster it joined ('' before it joined one). */
  incarnation: string;
  clusterId: string;
  /** Epoch of the last record in the log. */
  lastEpoch: number;
  /** Primary: the last index acknowledged to callers, and its epoch (0 elsewhere). */
  acknowledgedIndex: number;
  acknowledgedEpoch: number;
  /** How long the local write in progress has been running (0: none). */
  writeStallMs: number;
  /** Namespaces not seen yet start above this ID. */
  idFloor: number;
  /** Where clients reach this node (--advertise, else the bound listen address; '' unknown). */
  clientAddress: string;
  /**
   * A promotion to this epoch was received and is not done yet (0: none). A controller that
   * rebuilds its configuration from the nodes waits for it: the node may be about to serve in
   * an epoch an earlier controller gave it.
   */
  promotingEpoch: number;
  /**
   * Its recovery cut a torn tail off its WAL (meta tailCut) and its log has not yet been
   * compared with the other member's: the records cut may have been acknowledged.
   */
  tailCut: boolean;
  /** The highest controller ballot this node stored (noBallot: none). */
  ballot: Ballot;
}

/** What a node at start tells the controller (tally.v1.JoinRequest). */
export interface JoinReport {
  nodeId: string;
  incarnation: string;
  clusterId: string;
  epoch: number;
  epochPrimary: string;
  role: Role;
  lastIndex: number;
  lastEpoch: number;
  catchingUp: boolean;
  /** The highest controller ballot this directory stored. */
  ballot?: Ballot;
}

/** Where the controller puts a node at start. */
export interface Placement {
  role: Role;
  /** Primary: the standby's HOST:PORT and node id. */
  standby?: string;
  standbyId?: string;
  /** Primary: the standby is durably out of the in-sync set; acknowledge alone. */
  aloneApproved?: boolean;
  /** The cluster the node belongs to ('' for none: no controller). */
  clusterId?: string;
  /** Standby: the controller does not count it in sync (new, behind, or not yet added back). */
  catchingUp?: boolean;
  /** The controller's ballot: stored when higher than the node's; refused when older. */
  ballot?: Ballot;
}

export interface PromoteOptions {
  /** HOST:PORT of the new primary's standby; absent: alone (standalone). */
  standby?: string;
  /** The controller durably recorded this node as the only in-sync member. */
  aloneApproved?: boolean;
  /** Operator's forced promotion: also when catching up; begins with a skip-ahead. */
  force?: boolean;
  /** Forced promotion: every counter and the floor for new namespaces go up by this much. */
  skipAhead?: number;
  /**
   * The controller's ballot (src/core/ballot.ts): refused when older than the one this node
   * stored. Absent (an operator's tally promote --target): refused once the node stored one
   * (it follows a controller).
   */
  ballot?: Ballot;
}

/** A primary's view of its standby, or a standby's view of its primary. */
export interface ReplicationStatus {
  /** Primary: the standby's address. Standby: the primary's client address, if known. */
  peer: string;
  /** Primary: connecting, handshaking, catching-up, streaming, fenced. Standby: connected or not. */
  state: string;
  /** Highest index the standby has fsynced (primary), or holds (standby). */
  ackIndex: number;
  lagRecords: number;
  lagSeconds: number;
  /** Standby: not yet at the primary's tail since it was new, wiped or rejoined. */
  catchingUp: boolean;
}

/** What a primary does when its standby stops acknowledging (with a failover controller). */
export type StandbyLossPolicy = 'degrade' | 'block';

/**
 * The failover controller as a primary sees it (src/controller implements it over gRPC).
 * Each call resolves only once the change is durable at the controller; NotPrimaryError when
 * the controller has another primary, UnavailableError when it cannot be reached.
 */
export interface InSyncAuthority {
  removeFromInSync(request: InSyncRequest): Promise<void>;
  /** The controller verifies the standby holds `acknowledged…` before it records it in sync. */
  addToInSync(request: InSyncRequest): Promise<void>;
}

export interface InSyncRequest {
  /** The caller: primary of `epoch`, on data directory `primaryIncarnation`. */
  primaryId: string;
  primaryIncarnation: string;
  epoch: number;
  standbyId: string;
  /** Every record up to here is acknowledged (and the epoch of that record). */
  acknowledgedIndex: number;
  acknowledgedEpoch: number;
  /** Increases with each request of this primary's term (a late duplicate is refused). */
  seq: number;
}

export interface PromoteResult {
  epoch: number;
  role: Role;
  lastIndex: number;
}

export interface CounterNode {
  /**
   * Validates synchronously-cheap input, queues the request for the next group commit and
   * calls back once the record is fsynced (or with a typed error). `deadlineUnixMs`, when
   * given, drops the request with DeadlineExceededError if it has not been written by then.
   */
  allocate(
    namespace: string,
    count: number,
    deadlineUnixMs: number | undefined,
    cb: AllocateCallback,
  ): void;
  status(): NodeStatus;
  /** Role, state and epoch only: cheap enough for health checks to poll. */
  roleState(): RoleState;
  checkpoint(): Promise<CheckpointInfo>;
  /**
   * Standby only: accepts `epoch` (higher than any it holds) as its own, stops taking appends
   * from the old primary, writes the epoch-start record and serves — replicating to
   * `options.standby` when given (a HOST:PORT), alone otherwise (the operator's decision). A
   * catching-up standby is refused unless `force` (with a skip-ahead).
   */
  promote(epoch: number, options?: PromoteOptions): Promise<PromoteResult>;
  /**
   * A controller that creates or rebuilds a configuration: store `ballot` durably when it is
   * higher than the one stored (after every meta write under way, a promotion's included), so
   * that no command of an older controller is obeyed from now on. Returns the ballot stored.
   */
  storeBallot(ballot: Ballot): Promise<Ballot>;
  /**
   * Primary only (planned switchover): refuse new allocations, wait until every batch written
   * is acknowledged by the standby, then become a standby. Stays primary (and serves again)
   * when the standby does not acknowledge within `waitMs`.
   */
  stepDown(epoch: number, waitMs?: number): Promise<{ epoch: number; lastIndex: number }>;
  /**
   * The controller names another node primary: a primary (serving, starting or fenced) stops
   * acknowledging and rejoins as a standby. Nothing to do on a standby.
   */
  rejoinAsStandby(reason: string): Promise<void>;
  /**
   * The controller's in-sync set as last read: a primary whose acknowledgements all wait for a
   * standby the set leaves out asks the controller to verify and add it back.
   */
  noteInSyncSet(inSync: readonly string[]): void;
  /**
   * A replication stream from a primary (`peer` names it in logs). A node that is not a
   * standby ends it at once with FAILED_PRECONDITION.
   */
  openReplication(channel: Channel<ToPrimary>, peer: string): ChannelEvents<ToStandby>;
  /** Stop taking requests, finish the in-flight and queued batches, release the data dir. */
  close(): Promise<void>;
  /** Resolves when the node fails fatally (fsync error): the process must exit non-zero. */
  readonly failed: Promise<Error>;
}
