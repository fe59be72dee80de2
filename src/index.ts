/**
 * Tally's public surface: the client library (src/client/: primary discovery, retries,
 * pipelining, the ID block cache, base62) and what embedding a node in another process needs.
 */
export { openNode, type NodeOptions } from './node/node';
export type * from './node/types';
export * from './core/errors';
export * as limits from './core/limits';
export { createMetrics, type Metrics } from './core/metrics';
export { startServer, type StartServerOptions, type RunningServer } from './server/server';
export { startMetricsServer, type MetricsServer } from './server/metrics-http';
export { createLogger, type Logger } from './server/logger';
export { loadProtos } from './server/proto';
export { inspectDataDir, type InspectReport, type InspectedRecord } from './wal/inspect';
export * from './client';
