/** The controller's Prometheus metrics, on a registry the caller owns. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ControllerMetrics {
  registry: Registry;
  probes: Counter<'node' | 'result'>;
  failovers: Counter<'kind'>;
  promoteSeconds: Histogram;
  configVersion: Gauge;
  notServing: Gauge;
  memberInSync: Gauge<'node'>;
}

export function createControllerMetrics(opts: { defaults?: boolean } = {}): ControllerMetrics {
  const registry = new Registry();
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const failovers = new Counter({
    name: 'tally_controller_failovers_total',
    help: 'Promotions completed, by kind (failover, switchover, forced)',
    labelNames: ['kind'],
    registers,
  });
  // Every kind from 0, so increase() sees the first promotion of each.
  for (const kind of ['failover', 'switchover', 'forced']) failovers.inc({ kind }, 0);
  return {
    registry,
    probes: new Counter({
      name: 'tally_controller_probes_total',
      help: 'Status probes of the nodes, by node id and result (ok, failed)',
      labelNames: ['node', 'result'],
      registers,
    }),
    failovers,
    promoteSeconds: new Histogram({
      name: 'tally_controller_time_to_promote_seconds',
      help: 'From the decision to promote to the new primary confirming it',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    configVersion: new Gauge({
      name: 'tally_controller_config_version',
      help: 'Version of the cluster configuration the controller holds',
      registers,
    }),
    notServing: new Gauge({
      name: 'tally_controller_not_serving',
      help: '1 while no primary serves and none can be promoted (no member that holds every acknowledged record is up, or no configuration yet); the reason is in the log and in tally status --controller',
      registers,
    }),
    memberInSync: new Gauge({
      name: 'tally_controller_member_in_sync',
      help: 'Per member: 1 while it is in the in-sync set (holds every acknowledged record; may be promoted), 0 while it is not (down, behind, a new or replaced directory)',
      labelNames: ['node'],
      registers,
    }),
  };
}
