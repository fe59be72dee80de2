/**
 * `tally controller`: run the failover controller (configuration authority) until
 * SIGTERM/SIGINT; `tally switchover`: ask it for a planned switchover. Like `tally serve`,
 * the controller prints `{"event":"serving","grpcPort":…,"metricsPort":…,"pid":…}` once up.
 */
import path from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { systemClock } from '../core/clock';
import { FileConfigStore, type NodeRef } from '../controller/config-store';
import { Controller } from '../controller/controller';
import { createControllerMetrics } from '../controller/metrics';
import { lockDataDir } from '../node/data-dir';
import { ControllerClient, GrpcNodeAdmin } from '../server/controller-client';
import { startControllerServer } from '../server/controller-service';
import { parseHostPort } from '../server/listen';
import { crashOnAssertionFailure } from '../core/assert';
import { createLogger } from '../server/logger';
import { startMetricsServer, type Probes } from '../server/metrics-http';
import { NodeStorage } from '../wal/storage';
import { ConfigError } from '../core/errors';
import { CliError, exitUsage, hostPortArg, integerArg, notAController, out } from './common';
import { installShutdown, watchStdinWhileStarting } from './signals';

interface ControllerCliOptions {
  dataDir: string;
  listen: string;
  metricsListen: string;
  node?: NodeRef[];
  bootstrap?: boolean;
  updateAddresses?: boolean;
  probeIntervalMs: number;
  failoverTimeoutMs: number;
}

/** `--node ID=HOST:PORT`, repeatable; also comma-separated (TALLY_CONTROLLER_NODES). */
function nodeArg(value: string, previous: NodeRef[] = []): NodeRef[] {
  const refs = value.split(',').map((one) => {
    const m = /^([A-Za-z0-9._-]{1,64})=(.+)$/.exec(one.trim());
    if (m === null) throw new InvalidArgumentError(`expected ID=HOST:PORT, got '${one}'`);
    try {
      parseHostPort(m[2] as string);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
    return { id: m[1] as string, address: m[2] as string };
  });
  return [...previous, ...refs];
}

/** The controller's /healthz, /readyz and /role. */
function probes(controller: Controller, stopping: () => boolean): Probes {
  return {
    live: () => !stopping(),
    notReady: () => {
      if (stopping()) return 'not ready: stopping';
      if (controller.current === null) {
        return `not ready: no configuration yet (${controller.blocked || 'waiting for the nodes to join'})`;
      }
      return null;
    },
    role: () => {
      const c = controller.current;
      return {
        role: 'controller',
        state: stopping() ? 'stopping' : c === null ? 'building' : 'serving',
        epoch: c?.epoch ?? 0,
        primary: c?.primary.id ?? null,
        standby: c?.standby.id ?? null,
        inSync: c?.inSync ?? [],
        notServing: controller.blocked,
      };
    },
  };
}

/** The two --node flags, or none (the stored configuration names the members). */
function memberFlags(opts: ControllerCliOptions): [NodeRef, NodeRef] | undefined {
  const nodes = opts.node;
  if (nodes === undefined) {
    if (opts.bootstrap === true || opts.updateAddresses === true) {
      throw new CliError(
        'controller: --bootstrap and --update-addresses need both members: --node ID=HOST:PORT (twice)',
        exitUsage,
      );
    }
    return undefined;
  }
  if (nodes.length !== 2 || nodes[0]?.id === nodes[1]?.id) {
    throw new CliError(
      'controller: give exactly two nodes with different ids: --node ID=HOST:PORT (the first starts as primary)',
      exitUsage,
    );
  }
  return [nodes[0] as NodeRef, nodes[1] as NodeRef];
}

async function runController(opts: ControllerCliOptions): Promise<void> {
  watchStdinWhileStarting();
  const nodes = memberFlags(opts);
  if (opts.failoverTimeoutMs < 2 * opts.probeIntervalMs) {
    throw new CliError(
      'controller: --failover-timeout-ms must be at least two probe intervals',
      exitUsage,
    );
  }
  const logger = createLogger();
  // A failed assertion is a bug: log it and stop, whatever would have caught it.
  crashOnAssertionFailure((failure) => logger.fatal({ err: failure }, failure.message));
  const dataDir = path.resolve(opts.dataDir);
  const lock = lockDataDir(dataDir, ['cluster.json', 'cluster.json.tmp']);
  const metrics = createControllerMetrics();
  const admin = new GrpcNodeAdmin();
  const controller = new Controller({
    store: new FileConfigStore(new NodeStorage(), dataDir),
    admin,
    clock: systemClock,
    logger,
    metrics,
    nodes,
    bootstrap: opts.bootstrap,
    updateAddresses: opts.updateAddresses,
    probeIntervalMs: opts.probeIntervalMs,
    failoverTimeoutMs: opts.failoverTimeoutMs,
  });
  try {
    await controller.start();
  } catch (err) {
    lock.close();
    if (err instanceof ConfigError) throw new CliError(err.message, exitUsage);
    throw err;
  }
  let stopping = false;
  const server = await startControllerServer({ controller, listen: opts.listen, logger });
  const metricsServer = await startMetricsServer(
    opts.metricsListen,
    metrics.registry,
    logger.child({ module: 'metrics' }),
    probes(controller, () => stopping),
  );
  out(
    `${JSON.stringify({ event: 'serving', grpcPort: server.port, metricsPort: metricsServer.port, pid: process.pid })}\n`,
  );
  logger.info(
    { dataDir, grpcPort: server.port, metricsPort: metricsServer.port },
    'controller: serving',
  );
  installShutdown(
    logger,
    async () => {
      await controller.stop();
      await server.shutdown();
      await metricsServer.close();
      admin.close();
      lock.close();
    },
    () => (stopping = true),
  );
}

/**
 * Exit 0 only when the standby serves as the new primary; otherwise the controller's account
 * of what happened (refused, or the target did not serve and the old primary serves again).
 */
async function runSwitchover(opts: { controller: string }): Promise<void> {
  const client = new ControllerClient(opts.controller);
  try {
    const before = await client.getConfig();
    const after = await client.switchover();
    if (after.primary.id === before.primary.id || after.promoting) {
      throw new Error(
        `${after.primary.id} is primary (epoch ${after.epoch}); the switchover did not complete`,
      );
    }
    out(
      `switchover: ${before.primary.id} → ${after.primary.id} (epoch ${after.epoch}, ${after.lastFailover?.durationMs ?? '?'} ms)\n`,
    );
  } catch (err) {
    throw (
      (await notAController(opts.controller)) ??
      new CliError(`switchover failed: ${(err as Error).message}`)
    );
  } finally {
    client.close();
  }
}

export function registerController(program: Command): void {
  program
    .command('controller')
    .description('run the failover controller for one primary/standby pair')
    .addOption(
      new Option('--data-dir <dir>', 'where the cluster configuration is kept (locked)')
        .env('TALLY_CONTROLLER_DATA_DIR')
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--listen <host:port>', 'gRPC address (port 0 = any free port)')
        .env('TALLY_CONTROLLER_LISTEN')
        .default('127.0.0.1:7300')
        .argParser(hostPortArg),
    )
    .addOption(
      new Option('--metrics-listen <host:port>', 'Prometheus /metrics address')
        .env('TALLY_CONTROLLER_METRICS_LISTEN')
        .default('127.0.0.1:9300')
        .argParser(hostPortArg),
    )
    .addOption(
      new Option(
        '--node <id=host:port>',
        'a member (twice, or comma-separated): needed once, to create the cluster (the first starts as primary); afterwards the stored configuration names the members and --node must match it',
      )
        .env('TALLY_CONTROLLER_NODES')
        .argParser(nodeArg),
    )
    .option(
      '--bootstrap',
      'no stored configuration: create the cluster now with the first --node holding the history (instead of waiting for both nodes to prove what they hold)',
    )
    .option(
      '--update-addresses',
      'store the --node addresses for the same member ids (a member moved to a new address)',
    )
    .addOption(
      new Option('--probe-interval-ms <ms>', 'how often both nodes are probed')
        .env('TALLY_PROBE_INTERVAL_MS')
        .argParser(integerArg(10, 60_000))
        .default(100),
    )
    .addOption(
      new Option(
        '--failover-timeout-ms <ms>',
        'primary silent or unhealthy this long → promote the in-sync standby (a crash: at once)',
      )
        .env('TALLY_FAILOVER_TIMEOUT_MS')
        .argParser(integerArg(20, 600_000))
        .default(500),
    )
    .action(runController);
  program
    .command('switchover')
    .description(
      'planned switchover: the in-sync standby becomes primary, nothing acknowledged is lost',
    )
    .addOption(
      new Option('--controller <host:port>', 'the controller')
        .env('TALLY_CONTROLLER')
        .argParser(hostPortArg)
        .makeOptionMandatory(),
    )
    .action(runSwitchover);
}
