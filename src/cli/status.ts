/**
 * `tally status`: a node's role, epoch, WAL and counters, as a table or (--json) the
 * StatusResponse message with every 64-bit field (epochs, indexes, IDs, sizes) as a JSON
 * number. With --controller: the configuration, the epoch the cluster is in beside the
 * configuration's, and both nodes.
 */
import { type Command, Option } from 'commander';
import { shortId } from '../core/ids';
import { formatPosition } from '../controller/members';
import { clientAddressOf, type ClusterView } from '../server/controller-service';
import type { StatusResponse__Output } from '../generated/tally/v1/StatusResponse';
import { ControllerClient } from '../server/controller-client';
import {
  CliError,
  adminClient,
  deadlineOption,
  hostPortArg,
  jsonNumbers,
  notAController,
  out,
  plural,
  targetOption,
  unary,
} from './common';

interface StatusOptions {
  target: string;
  deadlineMs: number;
  json?: boolean;
  controller?: string;
}

function checkpointText(s: StatusResponse__Output): string {
  if (s.checkpointIndex === '0') return 'none';
  const at = new Date(Number(s.checkpointUnixMs)).toISOString();
  return `index ${s.checkpointIndex} at ${at}`;
}

function replicationRows(s: StatusResponse__Output): Array<[string, string]> {
  const r = s.replication;
  if (!r) return [];
  const lag = `${r.lagRecords} records, ${r.lagSeconds.toFixed(3)} s`;
  if (s.role === 'standby') {
    return [
      ['primary', `${r.peer || 'unknown'} (${r.state})`],
      ['lag', `${r.lagRecords} records behind${r.catchingUp ? ', catching up' : ''}`],
    ];
  }
  return [
    ['standby', `${r.peer} (${r.state})`],
    ['ack index', r.ackIndex],
    ['lag', lag],
  ];
}

export function formatStatus(s: StatusResponse__Output): string {
  const rows: Array<[string, string]> = [
    ['node', s.nodeId],
    ['role', s.role],
    ['state', s.state],
    ['epoch', s.epochPrimary ? `${s.epoch} (primary ${s.epochPrimary})` : s.epoch],
    ['last index', s.lastIndex],
    ...replicationRows(s),
    ['wal', `${plural(s.walSegments, 'segment')}, ${s.walBytes} bytes`],
    ['checkpoint', checkpointText(s)],
    ['data dir', s.dataDir],
    ['version', s.version],
  ];
  const lines = rows.map(([k, v]) => `${k.padEnd(12)}${v}`);
  const width = Math.max(9, ...s.namespaces.map((ns) => ns.name.length)) + 2;
  lines.push('', `${'NAMESPACE'.padEnd(width)}LAST ID`);
  for (const ns of s.namespaces) lines.push(`${ns.name.padEnd(width)}${ns.lastId}`);
  if (s.namespaces.length === 0) lines.push('(no namespaces yet)');
  return `${lines.join('\n')}\n`;
}

function nodeStatusOf(target: string, deadlineMs: number): Promise<StatusResponse__Output> {
  const client = adminClient(target);
  return unary<StatusResponse__Output>(target, client, deadlineMs, (options, cb) =>
    client.status({}, options, cb),
  );
}

/** A node as `status --controller` shows it: what the controller says and what it says. */
interface ClusterNode {
  id: string;
  address: string;
  clientAddress: string;
  status: StatusResponse__Output | null;
  error?: string;
}

/**
 * The epoch the cluster is in: the highest any node answered with (and its primary). The
 * configuration's epoch is another thing: the epoch of the controller's last promotion (or
 * creation); a primary begins the next epoch itself each time it starts, without a promotion,
 * so the nodes' epoch is often higher. null when no node answered.
 */
export function currentEpoch(nodes: ClusterNode[]): { epoch: number; primary: string } | null {
  let best: { epoch: number; primary: string } | null = null;
  for (const n of nodes) {
    if (n.status === null) continue;
    const epoch = Number(n.status.epoch);
    if (best === null || epoch > best.epoch) best = { epoch, primary: n.status.epochPrimary };
  }
  return best;
}

function epochLine(config: ClusterView, nodes: ClusterNode[]): string {
  const current = currentEpoch(nodes);
  const now =
    current === null
      ? 'unknown (no node answered)'
      : `${current.epoch}${current.primary ? ` (primary ${current.primary})` : ''}`;
  const configured =
    current !== null && current.epoch === config.epoch
      ? `configuration: epoch ${config.epoch}`
      : `configuration: epoch ${config.epoch} (its last promotion or creation; a primary begins the next epoch itself each time it starts)`;
  return `epoch          ${now}; ${configured}`;
}

/**
 * The configuration as JSON: what the controller sent (GetConfig), 64-bit fields as numbers.
 * (ClusterView's other fields are the controller's own bookkeeping, not sent over the wire.)
 */
export function configJson(c: ClusterView): object {
  return {
    version: c.version,
    clusterId: c.clusterId,
    epoch: c.epoch,
    primary: c.primary,
    standby: c.standby,
    members: c.members,
    inSync: c.inSync,
    promoting: c.promoting,
    blocked: c.blocked,
    lastFailover: c.lastFailover,
  };
}

/** Who holds every acknowledged record (the in-sync members), and up to where it is vouched. */
function historyLine(config: ClusterView): string {
  if (config.inSync.length === 0) return '(no member: the history is lost unless a node returns)';
  return config.inSync
    .map((id) => {
      const vouched = config.members.find((m) => m.id === id)?.vouched ?? null;
      return `${id} (at least ${formatPosition(vouched)})`;
    })
    .join(', ');
}

/** What the controller knows of a member's data directory against what the node runs on. */
function directoryText(
  config: ClusterView,
  id: string,
  status: StatusResponse__Output | null,
): string {
  const recorded = config.members.find((m) => m.id === id)?.incarnation ?? '';
  const inSync = config.inSync.includes(id);
  const dir = shortId(status?.incarnation ?? recorded);
  if (status !== null && recorded !== '' && status.incarnation !== recorded)
    return `${dir} (unknown)`;
  return `${dir} (${inSync ? 'in sync' : 'not in sync'})`;
}

/** One row per node: what the controller says of it and what it says of itself. */
export function formatCluster(config: ClusterView, nodes: ClusterNode[]): string {
  const lines = [
    `cluster        ${shortId(config.clusterId)}, configuration version ${config.version}${config.promoting ? ' (promotion in progress)' : ''}`,
    epochLine(config, nodes),
    `history        ${historyLine(config)}`,
  ];
  if (config.blocked !== '') lines.push(`NOT SERVING    ${config.blocked}`);
  const f = config.lastFailover;
  lines.push(
    f === null
      ? 'last failover  none'
      : `last failover  ${f.kind} ${f.fromNode} → ${f.toNode} at ${new Date(f.atUnixMs).toISOString()}, epoch ${f.epoch}, ${f.durationMs} ms (${f.reason})`,
    '',
    `${'NODE'.padEnd(8)}${'ADDRESS'.padEnd(22)}${'CONFIGURED'.padEnd(12)}${'DIRECTORY'.padEnd(23)}${'ROLE'.padEnd(10)}${'STATE'.padEnd(10)}${'EPOCH'.padEnd(7)}${'LAST INDEX'.padEnd(12)}LAG`,
  );
  for (const n of nodes) {
    const configured = n.id === config.primary.id ? 'primary' : 'standby';
    const s = n.status;
    const dir = directoryText(config, n.id, s);
    if (s === null) {
      lines.push(
        `${n.id.padEnd(8)}${clientAddressOf(n).padEnd(22)}${configured.padEnd(12)}${dir.padEnd(23)}unreachable (${n.error ?? '?'})`,
      );
      continue;
    }
    const r = s.replication;
    const lag = r ? `${r.lagRecords} records${r.catchingUp ? ', catching up' : ''}` : '-';
    lines.push(
      `${n.id.padEnd(8)}${clientAddressOf(n).padEnd(22)}${configured.padEnd(12)}${dir.padEnd(23)}${s.role.padEnd(10)}${s.state.padEnd(10)}${s.epoch.padEnd(7)}${s.lastIndex.padEnd(12)}${lag}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function runClusterStatus(opts: StatusOptions & { controller: string }): Promise<void> {
  const client = new ControllerClient(opts.controller);
  let config: ClusterView;
  try {
    config = await client.getConfig(opts.deadlineMs);
  } catch (err) {
    throw (
      (await notAController(opts.controller)) ?? new CliError(`status: ${(err as Error).message}`)
    );
  } finally {
    client.close();
  }
  const nodes: ClusterNode[] = await Promise.all(
    [config.primary, config.standby].map(async (ref) => {
      try {
        // Where a client reaches it (a published port, outside a container network).
        return { ...ref, status: await nodeStatusOf(clientAddressOf(ref), opts.deadlineMs) };
      } catch (err) {
        return { ...ref, status: null, error: (err as Error).message };
      }
    }),
  );
  if (opts.json !== true) {
    out(formatCluster(config, nodes));
    return;
  }
  const current = currentEpoch(nodes);
  const doc = {
    config: configJson(config),
    epoch: {
      current: current?.epoch ?? null,
      primary: current?.primary ?? '',
      configured: config.epoch,
    },
    nodes: nodes.map((n) => ({
      ...n,
      status: jsonNumbers('tally.v1.StatusResponse', n.status),
    })),
  };
  out(`${JSON.stringify(doc)}\n`);
}

async function runStatus(opts: StatusOptions): Promise<void> {
  if (opts.controller !== undefined) {
    return runClusterStatus({ ...opts, controller: opts.controller });
  }
  const status = await nodeStatusOf(opts.target, opts.deadlineMs);
  if (opts.json === true) {
    out(`${JSON.stringify(jsonNumbers('tally.v1.StatusResponse', status))}\n`);
  } else {
    out(formatStatus(status));
  }
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      "show a node's role, epoch, WAL size, last checkpoint and counters; with --controller, the whole cluster",
    )
    .addOption(targetOption())
    .addOption(
      new Option(
        '--controller <host:port>',
        'show the cluster: configuration, in-sync set, both nodes',
      )
        .env('TALLY_CONTROLLER')
        .argParser(hostPortArg),
    )
    .addOption(deadlineOption())
    .option(
      '--json',
      'print the StatusResponse (with --controller: {config, epoch, nodes}) as JSON; epochs, indexes, IDs and sizes as numbers',
    )
    .action(runStatus);
}
