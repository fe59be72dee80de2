/**
 * `tally status`: a node's role, epoch, WAL and counters, as a table or (--json) the
 * StatusResponse message.
 */
import { type Command, Option } from 'commander';
import { shortId } from '../core/ids';
import { formatPosition } from '../controller/members';
import type { ClusterView } from '../server/controller-service';
import type { StatusResponse__Output } from '../generated/tally/v1/StatusResponse';
import { ControllerClient } from '../server/controller-client';
import {
  CliError,
  adminClient,
  deadlineOption,
  hostPortArg,
  out,
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
    ['wal', `${s.walSegments} segments, ${s.walBytes} bytes`],
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
  return unary<StatusResponse__Output>(client, deadlineMs, (options, cb) =>
    client.status({}, options, cb),
  );
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
export function formatCluster(
  config: ClusterView,
  nodes: Array<{
    id: string;
    address: string;
    status: StatusResponse__Output | null;
    error?: string;
  }>,
): string {
  const lines = [
    `cluster        ${shortId(config.clusterId)}, configuration version ${config.version}, epoch ${config.epoch}${config.promoting ? ' (promotion in progress)' : ''}`,
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
        `${n.id.padEnd(8)}${n.address.padEnd(22)}${configured.padEnd(12)}${dir.padEnd(23)}unreachable (${n.error ?? '?'})`,
      );
      continue;
    }
    const r = s.replication;
    const lag = r ? `${r.lagRecords} records${r.catchingUp ? ', catching up' : ''}` : '-';
    lines.push(
      `${n.id.padEnd(8)}${n.address.padEnd(22)}${configured.padEnd(12)}${dir.padEnd(23)}${s.role.padEnd(10)}${s.state.padEnd(10)}${s.epoch.padEnd(7)}${s.lastIndex.padEnd(12)}${lag}`,
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
    throw new CliError(`status: ${(err as Error).message}`);
  } finally {
    client.close();
  }
  const nodes = await Promise.all(
    [config.primary, config.standby].map(async (ref) => {
      try {
        return { ...ref, status: await nodeStatusOf(ref.address, opts.deadlineMs) };
      } catch (err) {
        return { ...ref, status: null, error: (err as Error).message };
      }
    }),
  );
  out(opts.json === true ? `${JSON.stringify({ config, nodes })}\n` : formatCluster(config, nodes));
}

async function runStatus(opts: StatusOptions): Promise<void> {
  if (opts.controller !== undefined) {
    return runClusterStatus({ ...opts, controller: opts.controller });
  }
  const status = await nodeStatusOf(opts.target, opts.deadlineMs);
  out(opts.json === true ? `${JSON.stringify(status)}\n` : formatStatus(status));
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
    .option('--json', 'print the StatusResponse as JSON')
    .action(runStatus);
}
