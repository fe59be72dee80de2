/**
 * Tally's public surface for embedding a node in another process. The client library
 * (src/client/: primary discovery, retries, block cache) will be exported from here too.
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
