/**
 * Where a node belongs, and how it learns it: the report it gives the controller at start
 * (joinReport), the placement it stores before acting on it (applyPlacement), the role checks
 * without a controller (checkRoleChange), the wait for the controller's answer
 * (placeByController) and the poll that tells a primary it was deposed (followController).
 * Every wait and poll runs on an injected Clock, so the simulator and unit tests drive them.
 */
import type { Logger } from 'pino';
import { formatBallot, higherBallot, noBallot, obeys } from '../core/ballot';
import { sleep, type Clock, type TimerHandle } from '../core/clock';
import { DataDirError, UnavailableError } from '../core/errors';
import type { Meta } from './data-dir';
import type { LogStore } from './log-store';
import type { MetaStore } from './meta-store';
import type { CounterNode, JoinReport, Placement, Role } from './types';

/** Refuses starting a standby's directory as anything else: that would be an unchecked promotion. */
export function checkRoleChange(meta: Meta, role: Role, dataDir: string, log: Logger): void {
  if (meta.role === role) return;
  if (meta.role === 'standby') {
    throw new DataDirError(
      `node: ${dataDir} holds a standby (epoch ${meta.epoch}); promote it with 'tally promote' ` +
        `instead of starting it as ${role}`,
    );
  }
  if (meta.role === 'primary' && role === 'standalone') {
    // Alone it would acknowledge IDs its standby never sees, and that standby could be promoted.
    throw new DataDirError(
      `node: ${dataDir} holds a primary (epoch ${meta.epoch}); start it as primary (with its ` +
        'standby) or as standby, not standalone',
    );
  }
  log.warn({ from: meta.role, to: role }, 'node: role changed at start');
}

/** What the node holds, for the controller (tally.v1.JoinRequest). */
export function joinReport(
  meta: Readonly<Meta>,
  store: Pick<LogStore, 'lastIndex' | 'lastEpoch'>,
): JoinReport {
  return {
    nodeId: meta.nodeId,
    incarnation: meta.incarnation,
    clusterId: meta.clusterId ?? '',
    epoch: meta.epoch,
    epochPrimary: meta.epochPrimary ?? '',
    role: meta.role,
    lastIndex: store.lastIndex,
    lastEpoch: store.lastEpoch,
    // A log whose torn tail was cut and not yet compared with the other member's is not
    // known to hold every acknowledged record (the controller does not let it serve alone).
    catchingUp: meta.catchingUp === true || meta.tailCut === true,
    ballot: meta.ballot ?? noBallot,
  };
}

/** Stores where the node was placed (role, catching-up flag, cluster) before it acts on it. */
export async function applyPlacement(
  metaStore: Pick<MetaStore, 'current' | 'set'>,
  placement: Placement,
  dataDir: string,
): Promise<void> {
  const m = metaStore.current;
  const joined = m.clusterId ?? '';
  const cluster = placement.clusterId ?? '';
  if (cluster !== '' && joined !== '' && cluster !== joined) {
    throw new DataDirError(
      `data-dir: ${dataDir} belongs to cluster ${joined}, but the controller runs cluster ${cluster}; ` +
        'give this node an empty data directory to join this cluster, or point it at its own controller',
    );
  }
  const stored = m.ballot ?? noBallot;
  const older = placement.ballot === undefined ? stored.n > 0 : !obeys(stored, placement.ballot);
  if (older) {
    // A controller that restarted on an old copy of its configuration, or a placement from a
    // controller whose configuration another one rebuilt since: not obeyed.
    throw new UnavailableError(
      `placement: the controller's ballot ${formatBallot(placement.ballot ?? noBallot)} is older than ${formatBallot(stored)}, which this node obeys: the controller runs an older configuration than one this node followed; give it its current cluster.json`,
    );
  }
  const ballot = higherBallot(stored, placement.ballot);
  const role = placement.role;
  // A node turned standby, or one the controller does not count in sync, is catching up.
  const catchingUp =
    role === 'standby' && (m.role !== 'standby' || placement.catchingUp === true || !!m.catchingUp);
  const next: Partial<Meta> = {
    role,
    catchingUp: catchingUp || undefined,
    snapshotInstall: undefined,
    clusterId: cluster || joined || undefined,
    ballot,
  };
  const same =
    ballot === m.ballot &&
    m.role === role &&
    !!m.catchingUp === catchingUp &&
    !m.snapshotInstall &&
    (m.clusterId ?? '') === (cluster || joined);
  if (!same) await metaStore.set(next);
}

/** The controller as placement needs it (src/server/controller-client.ts). */
export interface PlacementAuthority {
  readonly address: string;
  join(report: JoinReport): Promise<Placement>;
  getConfig(): Promise<{
    epoch: number;
    promoting: boolean;
    primary: { id: string };
    inSync: readonly string[];
  }>;
}

/** How long a node waits between attempts to reach the controller at start. */
export const controllerRetryMs = 500;
/** Attempts (controllerRetryMs apart) before waiting for the controller is worth a warning. */
const controllerQuietAttempts = 10;
/** How often a node re-reads the controller's configuration (to learn it was deposed). */
export const configPollMs = 1000;

/**
 * With a controller the node reports what its data directory holds once it has recovered its
 * log, and the controller says where it belongs; a node never guesses. While the controller
 * cannot place it yet (unreachable, or still building its configuration) it waits; a refusal
 * (another cluster's directory, not a member) rejects with the controller's error.
 */
export function placeByController(
  controller: PlacementAuthority,
  logger: Logger,
  clock: Clock,
): (report: JoinReport) => Promise<Placement> {
  return async (report) => {
    for (let attempt = 0; ; attempt++) {
      try {
        const placement = await controller.join(report);
        logger.info(
          { ...placement, incarnation: report.incarnation, lastIndex: report.lastIndex },
          'serve: placed by the controller',
        );
        return placement;
      } catch (err) {
        if (!(err instanceof UnavailableError)) throw err;
        // The controller usually starts next to the node: a few seconds of waiting is normal.
        const level = attempt >= controllerQuietAttempts ? 'warn' : 'info';
        if (attempt % 10 === 0) {
          logger[level](
            { controller: controller.address, err: err.message },
            'serve: waiting for the controller to place this node',
          );
        }
        await sleep(clock, controllerRetryMs);
      }
    }
  };
}

/**
 * Why a node must rejoin as standby, given the controller's configuration (null: it need not):
 * another node is primary in an epoch above the node's own. A configuration read before a
 * promotion that has happened since (its epoch at or below the node's) decides nothing.
 */
export function deposedBy(
  config: { epoch: number; promoting: boolean; primary: { id: string } },
  id: string,
  status: { role: string; epoch: number },
): string | null {
  if (config.promoting || config.primary.id === id) return null;
  if (status.role === 'standby' || config.epoch <= status.epoch) return null;
  return `the controller names ${config.primary.id} primary of epoch ${config.epoch}`;
}

/**
 * Polls the controller's configuration (one poll at a time): passes the in-sync set to the
 * node, and makes a deposed primary rejoin as standby. Returns the stop function.
 */
export function followController(
  controller: PlacementAuthority,
  node: Pick<CounterNode, 'status' | 'noteInSyncSet' | 'rejoinAsStandby'>,
  id: string,
  clock: Clock,
): () => void {
  let polling = false;
  const timer: TimerHandle = clock.setInterval(() => {
    if (polling) return;
    polling = true;
    controller
      .getConfig()
      .then(
        (config) => {
          node.noteInSyncSet(config.inSync);
          const reason = deposedBy(config, id, node.status());
          if (reason !== null) void node.rejoinAsStandby(reason);
        },
        () => undefined, // unreachable: the data path does not depend on it
      )
      .finally(() => (polling = false));
  }, configPollMs);
  timer.unref();
  return () => clock.clearInterval(timer);
}
