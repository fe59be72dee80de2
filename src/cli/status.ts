/**
 * `tally status`: a node's role, epoch, WAL and counters, as a table or (--json) the
 * StatusResponse message.
 */
import type { Command } from 'commander';
import type { StatusResponse__Output } from '../generated/tally/v1/StatusResponse';
import { adminClient, deadlineOption, out, targetOption, unary } from './common';

interface StatusOptions {
  target: string;
  deadlineMs: number;
  json?: boolean;
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

async function runStatus(opts: StatusOptions): Promise<void> {
  const client = adminClient(opts.target);
  const status = await unary<StatusResponse__Output>(client, opts.deadlineMs, (options, cb) =>
    client.status({}, options, cb),
  );
  out(opts.json === true ? `${JSON.stringify(status)}\n` : formatStatus(status));
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description("show a node's role, epoch, WAL size, last checkpoint and counters")
    .addOption(targetOption())
    .addOption(deadlineOption())
    .option('--json', 'print the StatusResponse as JSON')
    .action(runStatus);
}
