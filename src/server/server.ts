/**
 * The node's gRPC server: Counter, Admin, Replication, grpc.health.v1 Health and server
 * reflection on one port. Tally accepts the connections (h2/frontend.ts): a connection that
 * opens with a unary Counter/Allocate is served at the HTTP/2 frame level
 * (h2/unary-connection.ts); every other one goes to grpc-js, whose sessions hand Counter's
 * calls back by path to be served on the raw http2 streams (counter-service.ts).
 *
 * Health is role-aware: service "" is SERVING while the process is fine; "tally.v1.Counter" is
 * SERVING only while this node serves allocations (a serving primary or standalone), so
 * health-based routing and readiness probes send clients to the primary only.
 *
 * Shutdown is graceful: health flips to NOT_SERVING first, calls are still answered for the
 * drain delay (load balancers and readiness probes see the change and stop sending), then no
 * new calls are accepted, in-flight calls finish; the caller closes the node afterwards.
 */
import type * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import { replicationMessageBytesMax } from '../core/limits';
import type { Metrics } from '../core/metrics';
import type { CounterNode, RoleState } from '../node/types';
import { createAdminHandlers } from './admin-service';
import { CounterService, type StreamRoute } from './counter-service';
import { Frontend } from './h2/frontend';
import { parseHostPort } from './listen';
import { createReplicationHandlers } from './replication-service';
import { loadProtos } from './proto';

/** How long shutdown waits for in-flight calls before cancelling what is left. */
export const shutdownGraceMsDefault = 10_000;
/** How often the Counter health status follows the node's role (a promotion, a demotion). */
const healthPollMs = 100;

/** True when the node serves allocations: clients (and readiness probes) belong here. */
export function servesAllocations(s: RoleState): boolean {
  return s.state === 'serving' && (s.role === 'primary' || s.role === 'standalone');
}

export const counterServiceName = 'tally.v1.Counter';
/** What a node serves (reflection lists these; the controller's service lives elsewhere). */
const nodeServiceNames = [counterServiceName, 'tally.v1.Admin', 'tally.v1.Replication'];

export const serverOptions: grpc.ServerOptions = {
  // Replication messages are the large ones; Counter requests are held to their own limit.
  'grpc.max_receive_message_length': replicationMessageBytesMax + 64 * 1024,
  // Ping idle clients so half-open connections (peer host gone) are found and closed.
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  // Per-call bookkeeping nobody reads; off, grpc-js uses its plain stream handler.
  'grpc.enable_channelz': 0,
};

/** grpc-js's per-stream entry points (1.14); each is looked up when the port is bound. */
const streamHandlerNames = ['_streamHandler', '_channelzHandler'] as const;

type GrpcStreamHandler = (
  this: grpc.Server,
  extraInterceptors: unknown,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
) => void;

/**
 * Serves the streams whose :path is in `routes` itself, and leaves every other stream to
 * grpc-js. grpc-js has no public hook for this, so its per-stream handlers are wrapped on this
 * instance (before bindAsync, which binds them). Fails loudly if a grpc-js upgrade renamed
 * them, rather than leaving Counter unserved.
 */
export function routeStreams(server: grpc.Server, routes: ReadonlyMap<string, StreamRoute>): void {
  const internals = server as unknown as Record<string, GrpcStreamHandler | undefined>;
  for (const name of streamHandlerNames) {
    const original = internals[name];
    if (typeof original !== 'function') {
      throw new Error(`server: @grpc/grpc-js has no Server.${name}; update routeStreams()`);
    }
    internals[name] = function (this: grpc.Server, extraInterceptors, stream, headers) {
      // Routed streams skip grpc-js's per-call bookkeeping, including onStreamOpened (only
      // used by grpc.max_connection_idle_ms, which Tally does not set).
      const route = routes.get(headers[':path'] ?? '');
      if (route !== undefined) route(stream, headers);
      else original.call(this, extraInterceptors, stream, headers);
    };
  }
}

export interface StartServerOptions {
  node: CounterNode;
  /** HOST:PORT; port 0 picks a free port (see RunningServer.port). */
  listen: string;
  logger: Logger;
  metrics: Metrics;
  shutdownGraceMs?: number;
  /** Shutdown: NOT_SERVING this long before calls are refused (default 0). */
  drainDelayMs?: number;
}

export interface RunningServer {
  port: number;
  server: grpc.Server;
  health: HealthImplementation;
  /** What the Counter health service says now (false from the start of shutdown). */
  ready(): boolean;
  /**
   * Idempotent; resolves when every call has finished (or was cancelled after the grace).
   * Health says NOT_SERVING at once; calls are refused only after the drain delay.
   */
  shutdown(): Promise<void>;
}

async function listenOn(frontend: Frontend, listen: string): Promise<number> {
  const { host, port } = parseHostPort(listen);
  try {
    return await frontend.listen(host, port);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? 'the address is in use' : e.message;
    throw new Error(`server: cannot listen on ${listen}: ${why}`);
  }
}

/** tryShutdown, bounded: calls still open after the grace period are cancelled. */
function stopServer(server: grpc.Server, graceMs: number, logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      logger.warn({ graceMs }, 'server: calls still open after the grace period; cancelling');
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function checkListen(listen: string): void {
  try {
    parseHostPort(listen);
  } catch (err) {
    throw new Error(`server: ${(err as Error).message}`);
  }
}

export async function startServer(opts: StartServerOptions): Promise<RunningServer> {
  checkListen(opts.listen);
  const logger = opts.logger.child({ module: 'server' });
  const { packageDefinition, tally } = loadProtos();
  const server = new grpc.Server(serverOptions);
  const counter = new CounterService({ node: opts.node, logger, metrics: opts.metrics });
  routeStreams(server, counter.routes);
  server.addService(tally.v1.Admin.service, createAdminHandlers(opts.node, logger));
  server.addService(
    tally.v1.Replication.service,
    createReplicationHandlers(opts.node, logger.child({ module: 'replication' })),
  );
  let counterServing = servesAllocations(opts.node.roleState());
  opts.metrics.serving.set(counterServing ? 1 : 0);
  const health = new HealthImplementation({
    '': 'SERVING',
    [counterServiceName]: counterServing ? 'SERVING' : 'NOT_SERVING',
  });
  health.addToServer(server);
  const followRole = setInterval(() => {
    const now = servesAllocations(opts.node.roleState());
    if (now === counterServing) return;
    counterServing = now;
    opts.metrics.serving.set(now ? 1 : 0);
    health.setStatus(counterServiceName, now ? 'SERVING' : 'NOT_SERVING');
  }, healthPollMs);
  followRole.unref();
  new ReflectionService(packageDefinition, { services: nodeServiceNames }).addToServer(server);

  const credentials = grpc.ServerCredentials.createInsecure();
  const frontend = new Frontend(server, credentials, counter, opts.metrics);
  let port: number;
  try {
    port = await listenOn(frontend, opts.listen);
  } catch (err) {
    clearInterval(followRole);
    server.forceShutdown();
    throw err;
  }
  logger.debug({ port }, 'server: listening');

  let stopping: Promise<void> | undefined;
  let draining = false;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      clearInterval(followRole);
      draining = true;
      counterServing = false;
      opts.metrics.serving.set(0);
      health.setStatus('', 'NOT_SERVING');
      health.setStatus(counterServiceName, 'NOT_SERVING');
      const drainDelayMs = opts.drainDelayMs ?? 0;
      if (drainDelayMs > 0) {
        logger.info({ drainDelayMs }, 'server: NOT_SERVING; refusing calls after the drain delay');
        await new Promise((r) => setTimeout(r, drainDelayMs));
      }
      counter.drain();
      const graceMs = opts.shutdownGraceMs ?? shutdownGraceMsDefault;
      await Promise.all([frontend.close(graceMs), stopServer(server, graceMs, logger)]);
      frontend.destroyAll();
      logger.info('server: stopped');
    })();
    return stopping;
  };
  return {
    port,
    server,
    health,
    ready: () => !draining && servesAllocations(opts.node.roleState()),
    shutdown,
  };
}
