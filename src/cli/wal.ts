/**
 * `tally wal verify` and `tally wal dump`: offline, read-only inspection of a data dir.
 * A torn record at the very tail of the last segment is what a crash mid-write leaves; the
 * node cuts it off at the next start, so verify reports it but exits 0. A bad record
 * anywhere else is corruption: exit 1, naming the file and offset.
 */
import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { inspectDataDir, type InspectReport, type InspectedRecord } from '../wal/inspect';
import { CliError, out } from './common';

interface WalOptions {
  dataDir: string;
  json?: boolean;
}

/** Lines are collected and written in chunks: a dump can hold millions of records. */
const dumpChunkBytesMax = 64 * 1024;

function corruptionError(report: InspectReport): CliError | null {
  const c = report.corruption;
  if (c === null) return null;
  return new CliError(`wal: corrupt record in ${c.file} at offset ${c.offset}: ${c.message}`);
}

function tornTailNote(report: InspectReport): string | null {
  const t = report.tornTail;
  if (t === null) return null;
  return `note: torn record at the tail of ${t.file} at offset ${t.offset} (a crash mid-write; the next start cuts it off; not corruption)`;
}

function summary(report: InspectReport): string {
  const range =
    report.records === 0 ? 'no records' : `indexes ${report.firstIndex}..${report.lastIndex}`;
  const snapshot =
    report.snapshotIndex === 0 ? 'no snapshot' : `snapshot at index ${report.snapshotIndex}`;
  return `${report.segments} segments, ${report.records} records, ${range}, ${snapshot}`;
}

/** inspectDataDir, with I/O failures (missing dir, permissions) named for the operator. */
async function inspect(
  dataDir: string,
  onRecord?: (r: InspectedRecord) => void,
): Promise<InspectReport> {
  const stat = await fs.stat(dataDir).catch(() => null);
  if (stat === null || !stat.isDirectory()) {
    throw new CliError(`wal: data dir ${dataDir} does not exist or is not a directory`);
  }
  try {
    return await inspectDataDir(dataDir, onRecord);
  } catch (err) {
    throw new CliError(`wal: cannot inspect ${dataDir}: ${(err as Error).message}`);
  }
}

async function runVerify(opts: WalOptions): Promise<void> {
  const report = await inspect(opts.dataDir);
  const corrupt = corruptionError(report);
  if (opts.json === true) out(`${JSON.stringify(report)}\n`);
  else if (corrupt === null) out(`wal ok: ${summary(report)}\n`);
  const note = tornTailNote(report);
  if (note !== null && opts.json !== true) out(`${note}\n`);
  if (corrupt !== null) throw corrupt;
}

function formatRecord(r: InspectedRecord): string {
  let line = `${r.file}@${r.offset} ${r.type} epoch=${r.epoch} index=${r.index}`;
  if (r.namespace !== undefined) line += ` namespace=${r.namespace}`;
  if (r.first !== undefined) line += ` first=${r.first}`;
  if (r.count !== undefined) line += ` count=${r.count}`;
  if (r.nodeId !== undefined) line += ` node=${r.nodeId}`;
  if (r.skipAhead !== undefined) line += ` skip-ahead=${r.skipAhead}`;
  return line;
}

async function runDump(opts: WalOptions): Promise<void> {
  let chunk = '';
  const format = opts.json === true ? (r: InspectedRecord) => JSON.stringify(r) : formatRecord;
  const report = await inspect(opts.dataDir, (r) => {
    chunk += `${format(r)}\n`;
    if (chunk.length >= dumpChunkBytesMax) {
      out(chunk);
      chunk = '';
    }
  });
  out(chunk);
  const note = tornTailNote(report);
  if (note !== null) process.stderr.write(`tally: ${note}\n`);
  const corrupt = corruptionError(report);
  if (corrupt !== null) throw corrupt;
}

export function registerWal(program: Command): void {
  const wal = program.command('wal').description('inspect a data directory offline (read-only)');
  wal
    .command('verify')
    .description('check every WAL record; exit 1 naming file and offset if corrupt')
    .requiredOption('--data-dir <dir>', 'node data directory')
    .option('--json', 'print the inspection report as JSON')
    .action(runVerify);
  wal
    .command('dump')
    .description('print every WAL record, one per line')
    .requiredOption('--data-dir <dir>', 'node data directory')
    .option('--json', 'print JSON lines')
    .action(runDump);
}
