/**
 * Every Prometheus metric Tally exports, created on a registry that the caller owns (so tests
 * and the simulator get their own). Modules receive this object; none imports a global.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  requests: Counter<'method' | 'code'>;
  idsAllocated: Counter;
  requestDurationSeconds: Histogram<'method'>;
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
}

export function createMetrics(opts: { defaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const fast = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
  return {
    registry,
    requests: new Counter({
      name: 'tally_requests_total',
      help: 'Allocation requests finished, by method and gRPC status code name',
      labelNames: ['method', 'code'],
      registers,
    }),
    idsAllocated: new Counter({
      name: 'tally_ids_allocated_total',
      help: 'IDs handed out in acknowledged allocations',
      registers,
    }),
    requestDurationSeconds: new Histogram({
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
  };
}
