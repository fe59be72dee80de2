/**
 * What opening a counter node takes (openNode in node.ts). Its own module so that the parts of a
 * node (primary-term.ts, baseline.ts) can name it without importing the node itself.
 */
import type { Logger } from 'pino';
import type { Clock, Random } from '../core/clock';
import type { Metrics } from '../core/metrics';
import type { Dialer } from '../replication/protocol';
import type { Storage } from '../wal/storage';
import type { InSyncAuthority, JoinReport, Placement, Role, StandbyLossPolicy } from './types';

export interface NodeOptions {
  id: string;
  dataDir: string;
  logger: Logger;
  metrics: Metrics;
  /** Default standalone. A primary needs `standby`. Ignored with `place` (the controller decides). */
  role?: Role;
  /** Primary without a controller: the standby's HOST:PORT (dialled with `dial`). */
  standby?: string;
  /**
   * With a failover controller: called once the log is recovered with what this node holds
   * (its data directory's identity and its log); resolves to where the controller puts it.
   */
  place?: (report: JoinReport) => Promise<Placement>;
  /** Opens replication streams to a standby (gRPC in production, a simulated network in tests). */
  dial?: (target: string) => Dialer;
  /**
   * Where clients reach this node: the hint a standby gives when this node is its primary.
   * A promise when the port is known only once the server is bound; replication waits for it.
   */
  advertiseAddress?: string | Promise<string>;
  /**
   * Where clients reach this node as Status reports it (the controller hands it to clients in
   * GetConfig); '' when unknown — then clients dial the address the controller has. Default:
   * advertiseAddress.
   */
  clientAddress?: string | Promise<string>;
  /** Primary: the longest a request waits for the standby, deadline or not (default 10 s). */
  ackWaitMs?: number;
  /** Primary: no ack from the standby for this long ends the replication session. */
  replicationAckTimeoutMs?: number;
  segmentSizeBytes?: number;
  checkpointRecords?: number;
  checkpointBytes?: number;
  queuedRequestsMax?: number;
  /**
   * The failover controller. With it a primary whose standby stops acknowledging (or, while
   * starting, does not accept its epoch) asks it to take the standby out of the in-sync set
   * and then acknowledges alone (policy `degrade`), and a deposed primary rejoins as a standby
   * instead of staying fenced.
   */
  controller?: InSyncAuthority;
  /** With a controller: `degrade` (default) or `block` (keep waiting for the standby). */
  standbyLossPolicy?: StandbyLossPolicy;
  /** With a controller: a batch waiting this long for the standby starts a degrade. */
  degradeAfterMs?: number;
  /**
   * Test seams: a fault-injecting disk, a fake or simulated clock (every timer and clock read
   * of the node, its committer, replication and in-sync tracker), the source of its random
   * identities (incarnation, epoch nonces, reconnect jitter); `lock: false` skips the OS lock.
   */
  storage?: Storage;
  clock?: Clock;
  random?: Random;
  lock?: boolean;
}
