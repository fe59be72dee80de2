/**
 * The contract between a counter node and everything above it (gRPC server, CLI, tests).
 */
import type { TallyError } from '../core/errors';

export type Role = 'standalone' | 'primary' | 'standby';
export type NodeState = 'starting' | 'serving' | 'draining' | 'closed' | 'failed';

export interface AllocateResult {
  /** IDs first .. first+count-1 are now durable and belong to this caller. */
  first: number;
  count: number;
  epoch: number;
  /** WAL index of the record that made the allocation durable. */
  index: number;
}

/** Called exactly once per allocate(): with an error, or with the durable result. */
export type AllocateCallback = (err: TallyError | null, result?: AllocateResult) => void;

export interface CheckpointInfo {
  index: number;
  segmentsRemoved: number;
  durationUs: number;
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
  checkpoint(): Promise<CheckpointInfo>;
  /** Stop taking requests, finish the in-flight and queued batches, release the data dir. */
  close(): Promise<void>;
  /** Resolves when the node fails fatally (fsync error): the process must exit non-zero. */
  readonly failed: Promise<Error>;
}
