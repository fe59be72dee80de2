/**
 * The cluster configuration and where the controller keeps it. Every change is one durable
 * step with a higher version (temp file → fsync → rename → directory fsync), so a controller
 * that dies mid-change restarts from either the old or the new configuration, never a mix.
 *
 * The store is an interface so that a replicated store (etcd with a leader lease, several
 * controller replicas) can replace the local file later without touching the controller.
 */
import * as path from 'node:path';
import type { Ballot } from '../core/ballot';
import { DataDirError } from '../core/errors';
import { writeFileAtomic, type Storage } from '../wal/storage';

export interface NodeRef {
  id: string;
  /** HOST:PORT of the node's gRPC server. */
  address: string;
}

/** A place in the log: the record at `index`, written in `epoch`. */
export interface Position {
  epoch: number;
  index: number;
}

/** What the controller knows of one member's data directory. */
export interface MemberRecord {
  id: string;
  /** The incarnation of the directory the member runs on ('' until first seen: --bootstrap). */
  incarnation: string;
  /**
   * In-sync members: the member holds every acknowledged record up to here (a lower bound,
   * refreshed from the primary's acknowledged index). null: not vouched for (not in sync).
   */
  vouched: Position | null;
}

export interface FailoverRecord {
  atUnixMs: number;
  /** failover (automatic), switchover (operator, planned), forced (operator, skip-ahead). */
  kind: 'failover' | 'switchover' | 'forced';
  fromNode: string;
  toNode: string;
  epoch: number;
  /** From the decision to the new primary's promotion reply. */
  durationMs: number;
  reason: string;
}

export interface ClusterConfig {
  version: number;
  /** Random, given when the cluster was created; members' data directories carry it. */
  clusterId: string;
  /** The epoch of the latest promotion (a restarted primary may run in a higher one). */
  epoch: number;
  /**
   * The highest epoch any node has reported (a primary's own restarts, a standby's accepted
   * epoch): every promotion goes above it, even while the node that holds it is down.
   */
  epochSeen: number;
  primary: NodeRef;
  standby: NodeRef;
  /** Both members' data directories, as the controller last recorded them. */
  members: MemberRecord[];
  /** Node ids that hold every acknowledged record: only these are ever promoted. */
  inSync: string[];
  lastFailover: FailoverRecord | null;
  /** A promotion was decided and not yet confirmed by the new primary: resume it. */
  promoting: boolean;
  /** While promoting: the promotion is an operator's forced one with this skip-ahead. */
  forceSkipAhead: number;
  /**
   * The last in-sync request applied: a primary's requests are ordered by (epoch, seq), and
   * an older one (late, duplicated) is refused.
   */
  lastInSyncChange: { epoch: number; seq: number } | null;
  /**
   * This configuration's ballot (src/core/ballot.ts): picked above every member's when the
   * configuration was created, stored by the running members before it decided anything, and
   * carried by its promotions and placements. Absent in configurations from before ballots.
   */
  ballot?: Ballot;
}

/** The member record of `id` (every configuration holds both). */
export function memberOf(config: ClusterConfig, id: string): MemberRecord {
  const member = config.members.find((m) => m.id === id);
  if (member === undefined) throw new Error(`controller: no member record for ${id}`);
  return member;
}

export interface ConfigStore {
  /** The stored configuration, or null when there is none yet. */
  load(): Promise<ClusterConfig | null>;
  /** Durable when the promise resolves. */
  save(config: ClusterConfig): Promise<void>;
}

const configFileName = 'cluster.json';
/** 2: members (incarnations, vouched positions) and the cluster id. */
const formatVersion = 2;

/** The embedded default: one JSON file in the controller's data directory. */
export class FileConfigStore implements ConfigStore {
  private readonly file: string;

  constructor(
    private readonly storage: Storage,
    private readonly dataDir: string,
  ) {
    this.file = path.join(dataDir, configFileName);
  }

  async load(): Promise<ClusterConfig | null> {
    await this.storage.mkdir(this.dataDir);
    if (!(await this.storage.exists(this.file))) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse((await this.storage.readFile(this.file)).toString('utf8'));
    } catch (err) {
      throw new DataDirError(`controller: ${this.file} is unreadable: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const stored = parsed as { formatVersion?: unknown; config?: unknown };
    if (stored.formatVersion === 1) {
      // Written before members had identities: nothing in it says which data directory
      // holds the history, so the controller rebuilds the configuration from the nodes.
      return null;
    }
    if (stored.formatVersion !== formatVersion || !isClusterConfig(stored.config)) {
      throw new DataDirError(`controller: ${this.file} is not a Tally cluster configuration`);
    }
    return stored.config;
  }

  async save(config: ClusterConfig): Promise<void> {
    const data = Buffer.from(JSON.stringify({ formatVersion, config }, null, 2) + '\n');
    await writeFileAtomic(this.storage, this.file, data);
  }
}

function isNodeRef(x: unknown): x is NodeRef {
  const r = x as NodeRef;
  return (
    typeof r === 'object' && r !== null && typeof r.id === 'string' && typeof r.address === 'string'
  );
}

function isPosition(x: unknown): x is Position {
  const p = x as Position;
  return (
    typeof p === 'object' &&
    p !== null &&
    Number.isSafeInteger(p.epoch) &&
    Number.isSafeInteger(p.index)
  );
}

function isMember(x: unknown): x is MemberRecord {
  const m = x as MemberRecord;
  return (
    typeof m === 'object' &&
    m !== null &&
    typeof m.id === 'string' &&
    typeof m.incarnation === 'string' &&
    (m.vouched === null || isPosition(m.vouched))
  );
}

function isClusterConfig(x: unknown): x is ClusterConfig {
  const c = x as ClusterConfig;
  return (
    typeof c === 'object' &&
    c !== null &&
    Number.isSafeInteger(c.version) &&
    typeof c.clusterId === 'string' &&
    Number.isSafeInteger(c.epoch) &&
    Number.isSafeInteger(c.epochSeen) &&
    isNodeRef(c.primary) &&
    isNodeRef(c.standby) &&
    Array.isArray(c.members) &&
    c.members.every(isMember) &&
    [c.primary.id, c.standby.id].every((id) => c.members.some((m) => m.id === id)) &&
    Array.isArray(c.inSync) &&
    c.inSync.every((id) => typeof id === 'string') &&
    typeof c.promoting === 'boolean' &&
    Number.isSafeInteger(c.forceSkipAhead) &&
    (c.lastInSyncChange === null ||
      (typeof c.lastInSyncChange === 'object' &&
        Number.isSafeInteger(c.lastInSyncChange.epoch) &&
        Number.isSafeInteger(c.lastInSyncChange.seq)))
  );
}
