/**
 * The process logger: pino JSON lines on stderr, so stdout stays free for machine-readable
 * output (the `serving` line, `alloc` IDs). On a terminal the lines are made readable
 * (log-format.ts; LOG_FORMAT=json|pretty overrides). Modules take a child:
 * `logger.child({ module })`.
 */
import { writeSync } from 'node:fs';
import { format } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { prettyLine, wantPretty } from './log-format';

export type Logger = pino.Logger;

let warnedUnknownLevel = false;

export function createLogger(name = 'tally'): Logger {
  // Synchronous writes: a fatal line must reach stderr before process.exit(). Nothing logs
  // per request at info level, so this never sits on the hot path.
  const destination = wantPretty(process.stderr)
    ? { write: (line: string) => void writeSync(2, prettyLine(line)) }
    : pino.destination({ dest: 2, sync: true });
  const wanted = process.env.LOG_LEVEL ?? 'info';
  // A typo in LOG_LEVEL must not stop a node from starting: fall back to info and say so.
  const known = wanted in pino.levels.values || wanted === 'silent';
  const logger = pino({ name, level: known ? wanted : 'info' }, destination);
  if (!known && !warnedUnknownLevel) {
    warnedUnknownLevel = true;
    logger.warn({ LOG_LEVEL: wanted }, 'logger: unknown LOG_LEVEL; using info');
  }
  return logger;
}

/**
 * grpc-js writes its own diagnostics to console.error ("E No address added …"), which would
 * break the one-line startup errors and the JSON log stream. They go to the logger at debug
 * level instead: every failure they describe also reaches us through the API as an error.
 */
export function routeGrpcLogs(logger: Logger): void {
  const grpcLogger = logger.child({ module: 'grpc' });
  grpc.setLogger({ error: (...args: unknown[]) => grpcLogger.debug(format(...args)) });
}
