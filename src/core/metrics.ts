/**
 * Every Prometheus metric Tally exports, created on a registry that the caller owns (so tests
 * and the simulator get their own). Modules receive this object; none imports a global.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram } from './hot-metrics';

export interface Metrics {
  registry: Registry;
  /** Per-request metrics are hot-metrics (no label hashing per call); resolve children once. */
  requests: HotCounter<'method' | 'code'>;
  idsAllocated: HotCounter;
  requestDurationSeconds: HotHistogram<'method'>;
  fsyncDurationSeconds: Histogram;
  batchRecords: Histogram;
  walBytes: Gauge;
  walSegments: Gauge;
  checkpointDurationSeconds: Histogram;
  checkpoints: Counter;
  recoveryDurationSeconds: Gauge;
  recoveryRecords: Gauge;
  queuedRequests: Gauge;
  diskFull: Gauge;
  role: Gauge<'role'>;
  epoch: Gauge;
  replicationLagRecords: Gauge;
  replicationLagSeconds: Gauge;
  replicationAckSeconds: Histogram;
  replicationBatchBytes: Histogram;
  replicationReconnects: Counter;
  replicationCatchUpRecords: Counter;
  replicationCatchUpRemainingRecords: Gauge;
  replicationRejected: Counter<'reason'>;
  replicationTruncatedRecords: Counter;
  replicationSnapshotInstalls: Counter;
  degraded: Gauge;
  /** gRPC connections accepted, by who serves them: the frame-level Counter server or grpc-js. */
  connections: Counter<'served_by'>;
  /** 1 while this node serves allocations (what tally.v1.Counter health and /readyz say). */
  serving: Gauge;
  /** Standby: 1 while it is not yet at the primary's tail (new, wiped or rejoined). */
  catchingUp: Gauge;
  /** Set by the node: refreshes the lag gauges when /metrics is scraped. */
  onScrape: { refresh: () => void };
}

export function createMetrics(opts: { defaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const onScrape = { refresh: (): void => undefined };
  const fast = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
  return {
    registry,
    requests: new HotCounter({
      name: 'tally_requests_total',
      help: 'Allocation requests finished, by method and gRPC status code name',
      labelNames: ['method', 'code'],
      registers,
    }),
    idsAllocated: new HotCounter({
      name: 'tally_ids_allocated_total',
      help: 'IDs handed out in acknowledged allocations',
      registers,
    }),
    requestDurationSeconds: new HotHistogram({
      name: 'tally_request_duration_seconds',
      help: 'Allocation latency from receipt to reply',
      labelNames: ['method'],
      buckets: fast,
      registers,
    }),
    fsyncDurationSeconds: new Histogram({
      name: 'tally_wal_fsync_duration_seconds',
      help: 'WAL append per group-commit batch: write + fdatasync (and a segment rollover when one happens)',
      buckets: fast,
      registers,
    }),
    batchRecords: new Histogram({
      name: 'tally_wal_batch_records',
      help: 'Records per group-commit batch',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
      registers,
    }),
    walBytes: new Gauge({ name: 'tally_wal_bytes', help: 'Bytes in WAL segment files', registers }),
    walSegments: new Gauge({ name: 'tally_wal_segments', help: 'WAL segment files', registers }),
    checkpointDurationSeconds: new Histogram({
      name: 'tally_checkpoint_duration_seconds',
      help: 'Time to write a checkpoint and compact the WAL',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    checkpoints: new Counter({
      name: 'tally_checkpoints_total',
      help: 'Checkpoints written',
      registers,
    }),
    recoveryDurationSeconds: new Gauge({
      name: 'tally_recovery_duration_seconds',
      help: 'Time the last start spent loading the snapshot and replaying the WAL',
      registers,
    }),
    recoveryRecords: new Gauge({
      name: 'tally_recovery_records',
      help: 'WAL records replayed at the last start',
      registers,
    }),
    queuedRequests: new Gauge({
      name: 'tally_queued_requests',
      help: 'Allocation requests waiting for the next group commit',
      registers,
    }),
    diskFull: new Gauge({
      name: 'tally_disk_full',
      help: '1 while allocations are refused because the WAL disk is full',
      registers,
    }),
    ...replicationMetrics(registers, fast, onScrape),
    onScrape,
  };
}

function replicationMetrics(
  registers: Registry[],
  fast: number[],
  onScrape: { refresh: () => void },
) {
  return {
    role: new Gauge({
      name: 'tally_node_role',
      help: '1 for the role this node has now (standalone, primary, standby, fenced)',
      labelNames: ['role'],
      registers,
    }),
    epoch: new Gauge({ name: 'tally_node_epoch', help: 'Epoch this node holds', registers }),
    connections: new Counter({
      name: 'tally_server_connections_total',
      help: 'gRPC connections accepted, by what serves them: "frame" (opened with a unary Allocate: the frame-level Counter server) or "grpc-js" (everything else)',
      labelNames: ['served_by'],
      registers,
    }),
    serving: new Gauge({
      name: 'tally_node_serving',
      help: '1 while this node serves allocations (a serving primary or standalone node; what tally.v1.Counter health and /readyz say), 0 otherwise (standby, starting, fenced, draining)',
      registers,
    }),
    catchingUp: new Gauge({
      name: 'tally_replication_catching_up',
      help: 'Standby: 1 while it is not yet at the primary tail since it was new, wiped or rejoined (never promoted meanwhile)',
      registers,
      collect: () => onScrape.refresh(),
    }),
    degraded: new Gauge({
      name: 'tally_node_degraded',
      help: 'Primary: 1 while it acknowledges without its standby (the controller took the standby out of the in-sync set)',
      registers,
    }),
    replicationLagRecords: new Gauge({
      name: 'tally_replication_lag_records',
      help: 'Primary: records written and not yet acknowledged by the standby. Standby: records behind the primary',
      registers,
      collect: () => onScrape.refresh(),
    }),
    replicationLagSeconds: new Gauge({
      name: 'tally_replication_lag_seconds',
      help: 'Primary: age of the oldest batch sent to the standby and not yet acknowledged',
      registers,
    }),
    replicationAckSeconds: new Histogram({
      name: 'tally_replication_ack_seconds',
      help: 'Primary: time from sending a batch to the standby to its ack (standby write + fdatasync + network)',
      buckets: fast,
      registers,
    }),
    replicationBatchBytes: new Histogram({
      name: 'tally_replication_batch_bytes',
      help: 'Primary: record bytes per replication message',
      buckets: [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576],
      registers,
    }),
    replicationReconnects: new Counter({
      name: 'tally_replication_reconnects_total',
      help: 'Primary: replication sessions to the standby that ended and were retried',
      registers,
    }),
    replicationCatchUpRecords: new Counter({
      name: 'tally_replication_catch_up_records_total',
      help: 'Primary: records sent from the WAL to a standby that was behind',
      registers,
    }),
    replicationCatchUpRemainingRecords: new Gauge({
      name: 'tally_replication_catch_up_remaining_records',
      help: 'Primary: records the standby still has to receive before it is at the tail',
      registers,
    }),
    replicationRejected: new Counter({
      name: 'tally_replication_rejected_total',
      help: 'Standby: replication messages refused (the session ended), by reason',
      labelNames: ['reason'],
      registers,
    }),
    replicationTruncatedRecords: new Counter({
      name: 'tally_replication_truncated_records_total',
      help: 'Standby: unacknowledged records cut from the log to match the primary',
      registers,
    }),
    replicationSnapshotInstalls: new Counter({
      name: 'tally_replication_snapshot_installs_total',
      help: 'Standby: snapshots installed from the primary (catch-up past compacted records)',
      registers,
    }),
  };
}
