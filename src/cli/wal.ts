/**
 * `tally wal verify` and `tally wal dump`: offline, read-only inspection of a data dir.
 * A torn record at the very tail of the last segment is what a crash mid-write leaves; the
 * node cuts it off at the next start, so verify reports it but exits 0. A bad record
 * anywhere else is corruption: exit 1, naming the file and offset.
 *
 * A directory a running node holds (its lock is taken) is refused unless --allow-running: the
 * node changes the WAL while it is read. Records it has finished writing are whole (each write
 * is O_DSYNC, done before the record is acknowledged), but the one being written may read as
 * a torn tail, a checkpoint may delete segments under the reader, and a standby may cut its
 * tail or replace its log with a snapshot — which can fail the read or even look like
 * corruption. With --allow-running the read goes ahead with a warning, and any verdict says
 * it was taken from a running node. The lock is only tested, never held: a node can start.
 */
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { tryLock } from 'fs-native-extensions';
import { baselineTableFileName } from '../node/baseline';
import { lockFileName, metaFileName } from '../node/data-dir';
import { inspectDataDir, type InspectReport, type InspectedRecord } from '../wal/inspect';
import { walDirName } from '../wal/segment-files';
import { CliError, out, plural } from './common';

interface WalOptions {
  dataDir: string;
  json?: boolean;
  allowRunning?: boolean;
}

/** The controller keeps its configuration here (src/controller/config-store.ts). */
const controllerFileName = 'cluster.json';

/** Lines are collected and written in chunks: a dump can hold millions of records. */
const dumpChunkBytesMax = 64 * 1024;

/** How the inspection went: `live` when it read a running node's directory. */
interface Inspection {
  report: InspectReport;
  live: boolean;
}

function corruptionError({ report, live }: Inspection): CliError | null {
  const c = report.corruption;
  if (c === null) return null;
  const caveat = live
    ? ' (read while the node was running: stop it and verify again before trusting this)'
    : '';
  return new CliError(
    `wal: corrupt record in ${c.file} at offset ${c.offset}: ${c.message}${caveat}`,
  );
}

function tornTailNote({ report, live }: Inspection): string | null {
  const t = report.tornTail;
  if (t === null) return null;
  if (live) {
    return `note: the last record of ${t.file} at offset ${t.offset} was incomplete when read (the node is running: a write in progress)`;
  }
  return `note: torn record at the tail of ${t.file} at offset ${t.offset} (a crash mid-write; the next start cuts it off; not corruption)`;
}

function summary(report: InspectReport): string {
  const range =
    report.records === 0 ? 'no records' : `indexes ${report.firstIndex}..${report.lastIndex}`;
  const snapshot =
    report.snapshotIndex === 0 ? 'no snapshot' : `snapshot at index ${report.snapshotIndex}`;
  return `${plural(report.segments, 'segment')}, ${plural(report.records, 'record')}, ${range}, ${snapshot}`;
}

/** Why a directory holds no WAL to inspect (a controller's, an empty one, …); null if it does. */
async function noWal(dataDir: string): Promise<string | null> {
  const names = await fs.readdir(dataDir);
  if (names.includes(walDirName)) return null;
  if (names.includes(controllerFileName)) {
    return `it looks like a controller's directory: ${controllerFileName}`;
  }
  if (names.includes(baselineTableFileName)) {
    return `it holds ${baselineTableFileName}: the baseline engine (--engine baseline) keeps no WAL`;
  }
  if (names.includes(metaFileName)) return "a node's directory whose WAL was never created";
  const others = names.filter((name) => name !== lockFileName);
  if (others.length === 0) return 'it is empty';
  const shown = others
    .slice(0, 3)
    .map((name) => `'${name}'`)
    .join(', ');
  return `found ${shown}; a node's data dir holds meta and wal/`;
}

/**
 * The pid of the running node that holds `dataDir` (the pid it wrote into its lock file; ''
 * when unreadable), or null when no process holds it. Tests the lock with a shared lock and
 * lets go at once.
 */
function runningHolder(dataDir: string): string | null {
  const lockPath = path.join(dataDir, lockFileName);
  let fd: number;
  try {
    fd = fsSync.openSync(lockPath, fsSync.constants.O_RDONLY);
  } catch {
    return null; // no lock file: no node ever ran here
  }
  try {
    if (tryLock(fd, { shared: true })) return null;
    return fsSync.readFileSync(lockPath, 'utf8').trim();
  } catch {
    return null;
  } finally {
    fsSync.closeSync(fd); // releases the shared lock, if taken
  }
}

/** inspectDataDir, with I/O failures (missing dir, permissions) named for the operator. */
async function inspect(
  opts: WalOptions,
  onRecord?: (r: InspectedRecord) => void,
): Promise<Inspection> {
  const { dataDir } = opts;
  const stat = await fs.stat(dataDir).catch(() => null);
  if (stat === null || !stat.isDirectory()) {
    throw new CliError(`wal: data dir ${dataDir} does not exist or is not a directory`);
  }
  const why = await noWal(dataDir).catch(() => null);
  if (why !== null) throw new CliError(`wal: ${dataDir} holds no Tally WAL (${why})`);
  const pid = runningHolder(dataDir);
  const holder = `data dir ${dataDir} is in use by a running node${pid ? ` (pid ${pid})` : ''}`;
  if (pid !== null && opts.allowRunning !== true) {
    throw new CliError(
      `wal: ${holder}; it changes the WAL while it is read: stop it, or add --allow-running to read the records written so far`,
    );
  }
  if (pid !== null) {
    process.stderr.write(
      `tally: warning: ${holder}: reading the records written so far (the last may be incomplete; a checkpoint or a standby's rewind meanwhile can fail the read)\n`,
    );
  }
  try {
    return { report: await inspectDataDir(dataDir, onRecord), live: pid !== null };
  } catch (err) {
    const during =
      pid !== null ? ' (the node is running: it changed the WAL while it was read)' : '';
    throw new CliError(`wal: cannot inspect ${dataDir}: ${(err as Error).message}${during}`);
  }
}

async function runVerify(opts: WalOptions): Promise<void> {
  const inspection = await inspect(opts);
  const corrupt = corruptionError(inspection);
  if (opts.json === true) out(`${JSON.stringify(inspection.report)}\n`);
  else if (corrupt === null) out(`wal ok: ${summary(inspection.report)}\n`);
  const note = tornTailNote(inspection);
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
  const inspection = await inspect(opts, (r) => {
    chunk += `${format(r)}\n`;
    if (chunk.length >= dumpChunkBytesMax) {
      out(chunk);
      chunk = '';
    }
  });
  out(chunk);
  const note = tornTailNote(inspection);
  if (note !== null) process.stderr.write(`tally: ${note}\n`);
  const corrupt = corruptionError(inspection);
  if (corrupt !== null) throw corrupt;
}

const allowRunningHelp =
  "read a running node's directory anyway: the records written so far, with a warning";

export function registerWal(program: Command): void {
  const wal = program
    .command('wal')
    .description(
      "inspect a node's data directory offline (read-only; a running node's only with --allow-running)",
    );
  wal
    .command('verify')
    .description('check every WAL record; exit 1 naming file and offset if corrupt')
    .requiredOption('--data-dir <dir>', 'node data directory')
    .option('--json', 'print the inspection report as JSON')
    .option('--allow-running', allowRunningHelp)
    .action(runVerify);
  wal
    .command('dump')
    .description('print every WAL record, one per line')
    .requiredOption('--data-dir <dir>', 'node data directory')
    .option('--json', 'print JSON lines')
    .option('--allow-running', allowRunningHelp)
    .action(runDump);
}
