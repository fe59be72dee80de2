/**
 * `tally serve`: open a node on a data dir and serve gRPC + /metrics until SIGTERM/SIGINT.
 * Prints one JSON line to stdout once serving — `{"event":"serving","grpcPort":…}` — which
 * tests, benchmarks and supervisors parse (with port 0 it carries the real ports).
 */
import net from 'node:net';
import path from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { createMetrics, type Metrics } from '../core/metrics';
import { segmentSizeBytesMax, segmentSizeBytesMin, standbyWaitMsDefault } from '../core/limits';
import { systemClock } from '../core/clock';
import { openNode, type NodeOptions } from '../node/node';
import { followController, placeByController } from '../node/placement';
import type { CounterNode, JoinReport, Placement, Role, StandbyLossPolicy } from '../node/types';
import { ControllerClient } from '../server/controller-client';
import { grpcDialer } from '../server/replication-service';
import { dialHost, parseHostPort } from '../server/listen';
import { crashOnAssertionFailure } from '../core/assert';
import { createLogger, type Logger } from '../server/logger';
import { startMetricsServer, type MetricsServer, type Probes } from '../server/metrics-http';
import { servesAllocations, startServer, type RunningServer } from '../server/server';
import { CliError, exitUsage, hostPortArg, integerArg, out } from './common';
import { installShutdown, watchStdinWhileStarting } from './signals';

interface ServeOptions {
  id: string;
  dataDir: string;
  listen: string;
  metricsListen: string;
  segmentSizeBytes?: number;
  checkpointRecords?: number;
  checkpointBytes?: number;
  queuedRequestsMax?: number;
  engine: 'wal' | 'baseline';
  role: Role;
  standby?: string;
  advertise?: string;
  standbyWaitMs: number;
  controller?: string;
  standbyLoss: StandbyLossPolicy;
  degradeAfterMs: number;
  drainDelayMs: number;
}

interface Serving {
  node: CounterNode;
  controller: ControllerClient | null;
  /** Stops followController's poll (at shutdown). */
  stopFollowing?: () => void;
  grpc: RunningServer;
  metricsServer: MetricsServer;
  logger: Logger;
}

function idArg(value: string): string {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(value)) {
    throw new InvalidArgumentError('expected 1-64 characters of [A-Za-z0-9._-]');
  }
  return value;
}

async function openEngine(engine: ServeOptions['engine'], opts: NodeOptions): Promise<CounterNode> {
  if (engine === 'baseline') {
    // Loaded only when asked for: the baseline exists for benchmarks, not production.
    const { openBaselineNode } = await import('../node/baseline');
    return openBaselineNode(opts);
  }
  return openNode(opts);
}

function nodeOptions(
  opts: ServeOptions,
  logger: Logger,
  metrics: Metrics,
  advertise: Promise<string>,
  controller: ControllerClient | null,
): NodeOptions {
  return {
    id: opts.id,
    dataDir: path.resolve(opts.dataDir),
    logger,
    metrics,
    role: opts.role,
    standby: opts.standby,
    place:
      controller === null ? undefined : placeOrExit(controller, logger.child({ module: 'cli' })),
    controller: controller ?? undefined,
    standbyLossPolicy: opts.standbyLoss,
    degradeAfterMs: opts.degradeAfterMs,
    dial: grpcDialer,
    advertiseAddress: advertise,
    // Bound to every interface without --advertise: 127.0.0.1 is right only on this host, so
    // report nothing and let the controller's address for this node reach the clients.
    clientAddress: reportsClientAddress(opts.listen, opts.advertise) ? advertise : '',
    ackWaitMs: opts.standbyWaitMs,
    segmentSizeBytes: opts.segmentSizeBytes,
    checkpointRecords: opts.checkpointRecords,
    checkpointBytes: opts.checkpointBytes,
    queuedRequestsMax: opts.queuedRequestsMax,
  };
}

/** placeByController; a refusal (not a wait) stops the CLI with the controller's reason. */
function placeOrExit(
  controller: ControllerClient,
  logger: Logger,
): (report: JoinReport) => Promise<Placement> {
  const place = placeByController(controller, logger, systemClock);
  return (report) =>
    place(report).catch((err: unknown) => {
      throw new CliError(`serve: ${(err as Error).message}`);
    });
}

/**
 * Whether Status should name this node's client address: given by --advertise, or a listen
 * host clients elsewhere can dial. A wildcard listen host (0.0.0.0, ::) is dialled as
 * loopback, which reaches this node only from its own host.
 */
export function reportsClientAddress(listen: string, advertise: string | undefined): boolean {
  if (advertise !== undefined) return true;
  const { host } = parseHostPort(listen);
  return host !== '0.0.0.0' && host !== '::';
}

/**
 * Holds a listen address while the node recovers, so a busy port fails the start before the
 * node writes anything (an epoch-start record, a placement). Released just before the real
 * server binds it. Port 0 needs no holding.
 */
async function holdPort(what: string, listen: string): Promise<() => Promise<void>> {
  const { host, port } = parseHostPort(listen);
  if (port === 0) return () => Promise.resolve();
  // Nothing is served while holding: a peer that connects meanwhile is reset and retries.
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new CliError(
          `serve: cannot listen on ${listen} (${what}): ${err.code === 'EADDRINUSE' ? 'the address is in use' : err.message}; nothing was written`,
        ),
      ),
    );
    server.listen({ host, port, exclusive: true }, () => resolve());
  });
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Node failing fatally or not at all: /healthz; serving allocations: /readyz. */
function probes(node: CounterNode, grpc: RunningServer): Probes {
  return {
    live: () => {
      const { state } = node.roleState();
      return state !== 'failed' && state !== 'closed';
    },
    notReady: () => {
      if (grpc.ready()) return null;
      const s = node.roleState();
      if (servesAllocations(s)) return 'not ready: draining';
      return `not ready: ${s.role} (${s.state}); allocations go to the primary`;
    },
    role: () => {
      const s = node.roleState();
      return { ...s, serving: grpc.ready() };
    },
  };
}

/**
 * Checks both ports are free, opens the node, then binds the servers; if a server cannot
 * start, the node is closed again. A busy port stops the start before the node writes.
 */
async function start(opts: ServeOptions): Promise<Serving> {
  const releaseGrpc = await holdPort('gRPC', opts.listen);
  const releaseMetrics = await holdPort('metrics', opts.metricsListen).catch(async (err) => {
    await releaseGrpc();
    throw err;
  });
  const logger = createLogger();
  // A failed assertion is a bug: log it and stop, whatever would have caught it.
  crashOnAssertionFailure((failure) => logger.fatal({ err: failure }, failure.message));
  const metrics = createMetrics();
  const controller = opts.controller === undefined ? null : new ControllerClient(opts.controller);
  // The address a standby hands to clients: known once the server is bound (port 0).
  let advertised!: (address: string) => void;
  const advertise = new Promise<string>((resolve) => (advertised = resolve));
  let node: CounterNode;
  try {
    node = await openEngine(opts.engine, nodeOptions(opts, logger, metrics, advertise, controller));
  } catch (err) {
    controller?.close();
    throw err;
  } finally {
    await releaseGrpc();
    await releaseMetrics();
  }
  let grpc: RunningServer | undefined;
  try {
    grpc = await startServer({
      node,
      listen: opts.listen,
      logger,
      metrics,
      drainDelayMs: opts.drainDelayMs,
    });
    advertised(opts.advertise ?? `${dialHost(parseHostPort(opts.listen).host)}:${grpc.port}`);
    const metricsLogger = logger.child({ module: 'metrics' });
    const metricsServer = await startMetricsServer(
      opts.metricsListen,
      metrics.registry,
      metricsLogger,
      probes(node, grpc),
    );
    return { node, controller, grpc, metricsServer, logger: logger.child({ module: 'cli' }) };
  } catch (err) {
    await grpc?.shutdown();
    await node.close();
    controller?.close();
    throw err;
  }
}

function announce(s: Serving, opts: ServeOptions): void {
  const grpcPort = s.grpc.port;
  const metricsPort = s.metricsServer.port;
  out(`${JSON.stringify({ event: 'serving', grpcPort, metricsPort, pid: process.pid })}\n`);
  const target = `${dialHost(parseHostPort(opts.listen).host)}:${grpcPort}`;
  // Where to allocate: a standby refuses allocations, so point at what follows the primary.
  const { role } = s.node.roleState();
  const hint =
    opts.controller !== undefined
      ? `npx tally alloc --controller ${opts.controller} --namespace demo --count 3`
      : role === 'standby'
        ? 'allocate on the primary (this node is its standby)'
        : `npx tally alloc --target ${target} --namespace demo --count 3`;
  out(`tally: node ${opts.id} serving on ${target}; try: ${hint}\n`);
  s.logger.info(
    { id: opts.id, dataDir: path.resolve(opts.dataDir), grpcPort, metricsPort, role },
    'tally: serving',
  );
}

function installServeShutdown(s: Serving): void {
  installShutdown(
    s.logger,
    async () => {
      await s.grpc.shutdown();
      await s.node.close();
      await s.metricsServer.close();
      s.controller?.close();
    },
    () => {
      s.stopFollowing?.();
    },
  );
}

/** A fatal node failure (fsync error) leaves durable state unknown: never keep serving. */
function exitOnNodeFailure(s: Serving): void {
  s.node.failed.then(
    (err) => {
      s.logger.fatal({ err }, 'tally: node failed; exiting');
      process.exit(1);
    },
    (err: unknown) => {
      s.logger.fatal({ err }, 'tally: node failure promise rejected; exiting');
      process.exit(1);
    },
  );
}

async function runServe(opts: ServeOptions, command: Command): Promise<void> {
  if (opts.controller !== undefined) {
    if (command.getOptionValueSource('role') !== 'default' || opts.standby !== undefined) {
      throw new CliError(
        'serve: with --controller the controller decides the role; drop --role/--standby',
        exitUsage,
      );
    }
  } else if (opts.role === 'primary' && opts.standby === undefined) {
    throw new CliError('serve: --role primary needs --standby HOST:PORT', exitUsage);
  }
  if (opts.role !== 'primary' && opts.standby !== undefined) {
    throw new CliError('serve: --standby is only for --role primary', exitUsage);
  }
  watchStdinWhileStarting();
  const serving = await start(opts);
  if (serving.controller !== null) {
    serving.stopFollowing = followController(
      serving.controller,
      serving.node,
      opts.id,
      systemClock,
    );
  }
  exitOnNodeFailure(serving);
  installServeShutdown(serving);
  announce(serving, opts);
}

function intOption(
  flags: string,
  env: string,
  description: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): Option {
  return new Option(flags, description).env(env).argParser(integerArg(min, max));
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run a Tally node on a data directory (flags win over TALLY_* env variables)')
    .addOption(
      new Option('--id <id>', 'node id, stored in the data dir')
        .env('TALLY_ID')
        .argParser(idArg)
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--data-dir <dir>', 'data directory (locked while serving)')
        .env('TALLY_DATA_DIR')
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--listen <host:port>', 'gRPC address (port 0 = any free port)')
        .env('TALLY_LISTEN')
        .default('127.0.0.1:7400')
        .argParser(hostPortArg),
    )
    .addOption(
      new Option('--metrics-listen <host:port>', 'Prometheus /metrics address')
        .env('TALLY_METRICS_LISTEN')
        .default('127.0.0.1:9400')
        .argParser(hostPortArg),
    )
    .addOption(
      intOption(
        '--segment-size-bytes <n>',
        'TALLY_SEGMENT_SIZE_BYTES',
        `WAL segment size, ${segmentSizeBytesMin}..${segmentSizeBytesMax}`,
        segmentSizeBytesMin,
        segmentSizeBytesMax,
      ),
    )
    .addOption(
      intOption(
        '--checkpoint-records <n>',
        'TALLY_CHECKPOINT_RECORDS',
        'checkpoint after this many records',
        1,
      ),
    )
    .addOption(
      intOption(
        '--checkpoint-bytes <n>',
        'TALLY_CHECKPOINT_BYTES',
        'checkpoint after this many WAL bytes',
        1,
      ),
    )
    .addOption(
      intOption(
        '--queued-requests-max <n>',
        'TALLY_QUEUED_REQUESTS_MAX',
        'queued requests before RESOURCE_EXHAUSTED',
        1,
      ),
    )
    .addOption(
      new Option(
        '--engine <engine>',
        'storage engine (baseline = checkpoint-per-write, for benchmarks)',
      )
        .env('TALLY_ENGINE')
        .choices(['wal', 'baseline'])
        .default('wal'),
    )
    .addOption(
      new Option(
        '--role <role>',
        "standalone (acks after its own fsync), primary (acks after its own and the standby's), standby",
      )
        .env('TALLY_ROLE')
        .choices(['standalone', 'primary', 'standby'])
        .default('standalone'),
    )
    .addOption(
      new Option('--standby <host:port>', 'primary: the standby to replicate to')
        .env('TALLY_STANDBY')
        .argParser(hostPortArg),
    )
    .addOption(
      new Option(
        '--advertise <host:port>',
        'address clients use for this node (a standby hands it out as the primary hint)',
      )
        .env('TALLY_ADVERTISE')
        .argParser(hostPortArg),
    )
    .addOption(
      intOption(
        '--standby-wait-ms <ms>',
        'TALLY_STANDBY_WAIT_MS',
        'primary: longest a request waits for the standby (or its deadline, if sooner), then UNAVAILABLE',
        1,
        3_600_000,
      ).default(standbyWaitMsDefault),
    )
    .addOption(
      new Option(
        '--controller <host:port>',
        'the failover controller: it decides the role (no --role/--standby then)',
      )
        .env('TALLY_CONTROLLER')
        .argParser(hostPortArg),
    )
    .addOption(
      new Option(
        '--standby-loss <policy>',
        'with a controller, when the standby stops acknowledging: degrade (ask the controller, then acknowledge alone) or block',
      )
        .env('TALLY_STANDBY_LOSS')
        .choices(['degrade', 'block'])
        .default('degrade'),
    )
    .addOption(
      intOption(
        '--degrade-after-ms <ms>',
        'TALLY_DEGRADE_AFTER_MS',
        'with a controller: a batch waiting this long for the standby starts a degrade',
        10,
        600_000,
      ).default(500),
    )
    .addOption(
      intOption(
        '--drain-delay-ms <ms>',
        'TALLY_DRAIN_DELAY_MS',
        'on SIGTERM: health NOT_SERVING at once, calls refused after this delay (let load balancers and readiness probes notice)',
        0,
        600_000,
      ).default(0),
    )
    .action(runServe);
}
