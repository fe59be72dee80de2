/**
 * The node's data directory: an exclusive lock (fcntl, released by the kernel when the process
 * dies, SIGKILL included), the meta file {nodeId, incarnation, clusterId, epoch, role, …}, the
 * snapshot and wal/. Every meta write after the first goes through MetaStore (meta-store.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tryLock } from 'fs-native-extensions';
import type { Ballot } from '../core/ballot';
import { DataDirError } from '../core/errors';
import { systemRandom, type Random } from '../core/clock';
import { randomId } from '../core/ids';
import { walDirName } from '../wal/segment-files';
import { writeFileAtomic, type Storage } from '../wal/storage';
import type { Role } from './types';

export const lockFileName = 'LOCK';
export const metaFileName = 'meta';
const known = new Set([
  lockFileName,
  metaFileName,
  `${metaFileName}.tmp`,
  walDirName,
  'snapshot',
  'snapshot.tmp',
]);

export interface Meta {
  formatVersion: 1;
  nodeId: string;
  /**
   * Random, given when the directory is created: a wiped or replaced directory has another
   * one, so the controller can tell it holds none of the history even with the same node id.
   */
  incarnation: string;
  /** The cluster this directory joined ('' or absent before it joined one). */
  clusterId?: string;
  /** Highest epoch accepted; its identity is (epoch, epochPrimary, epochNonce). */
  epoch: number;
  /** The node that is primary of `epoch` ('' in directories written before replication). */
  epochPrimary?: string;
  /** Random per epoch begun or proposed: tells two proposals of one epoch number apart. */
  epochNonce?: string;
  role: Role;
  /** Standby: where clients reach the primary (the FAILED_PRECONDITION hint). */
  primaryAddress?: string;
  /** Standby: the data directory of the primary of `epoch` (its Hello said so). */
  primaryIncarnation?: string;
  /** Standby: its log has not yet reached the primary's tail (new, wiped, rejoined): never promoted. */
  catchingUp?: boolean;
  /** Standby: a snapshot install was interrupted; the log is discarded at start. */
  snapshotInstall?: boolean;
  /**
   * A forced promotion's skip-ahead not yet durable in an epoch-start record of this log: the
   * next epoch this node begins carries it (then it is cleared), even after a crash.
   */
  pendingSkipAhead?: number;
  /**
   * The epochs this node began as primary, newest last (the last ledEpochsKept). Records of
   * any other epoch in its log came from another primary, which may have acknowledged them.
   */
  led?: number[];
  /**
   * Recovery cut a torn tail off the WAL (stored before the cut): the records cut may have been
   * acknowledged (a disk can lose a tail it said was durable), so until this log has been
   * compared with the other member's it is not known to hold every acknowledged record.
   */
  tailCut?: boolean;
  /**
   * The highest controller ballot this node stored (Admin.Fence, or a command that carried a
   * higher one): it obeys no controller command with an older one (src/core/ballot.ts).
   */
  ballot?: Ballot;
}

/** How many of the epochs a node led its meta keeps. */
export const ledEpochsKept = 64;

/** `led` with `epoch` added (the newest ledEpochsKept). */
export function withLed(m: Readonly<Meta>, epoch: number): number[] {
  const led = (m.led ?? []).filter((e) => e !== epoch);
  led.push(epoch);
  return led.slice(-ledEpochsKept);
}

/** Holds the data-dir lock; close() releases it. */
export interface DirLock {
  close(): void;
}

function unusable(dataDir: string, err: unknown): DataDirError {
  const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new DataDirError(
    `data-dir: ${dataDir} is not usable (${reason}): ${(err as Error).message}`,
    { cause: err },
  );
}

/** Entries that do not belong in a Tally data dir. */
function foreignEntries(names: string[]): string[] {
  return names.filter((name) => !known.has(name));
}

function refuseForeign(dataDir: string, foreign: string[]): DataDirError {
  const shown = foreign
    .slice(0, 3)
    .map((n) => `'${n}'`)
    .join(', ');
  return new DataDirError(
    `data-dir: ${dataDir} is not a Tally data dir (found ${shown}); use an empty directory`,
  );
}

/** Creates the directory (durably) if needed, then takes the exclusive lock. Startup only: sync I/O. */
export function lockDataDir(dataDir: string, engineFiles: string[] = []): DirLock {
  let fd: number;
  try {
    if (fs.existsSync(dataDir)) {
      // Refuse someone else's directory before leaving a LOCK file in it.
      const names = fs.readdirSync(dataDir);
      const foreign = foreignEntries(names).filter((name) => !engineFiles.includes(name));
      if (!names.includes(metaFileName) && foreign.length > 0)
        throw refuseForeign(dataDir, foreign);
    } else {
      fs.mkdirSync(dataDir, { recursive: true });
      fsyncDirSync(path.dirname(path.resolve(dataDir)));
    }
    fd = fs.openSync(
      path.join(dataDir, lockFileName),
      fs.constants.O_RDWR | fs.constants.O_CREAT,
      0o644,
    );
  } catch (err) {
    if (err instanceof DataDirError) throw err;
    throw unusable(dataDir, err);
  }
  try {
    if (!tryLock(fd)) {
      const holder = fs.readFileSync(path.join(dataDir, lockFileName), 'utf8').trim();
      throw new DataDirError(
        `data-dir: ${dataDir} is locked by another running process${holder ? ` (pid ${holder})` : ''}`,
      );
    }
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, `${process.pid}\n`, 0);
  } catch (err) {
    fs.closeSync(fd);
    if (err instanceof DataDirError) throw err;
    throw unusable(dataDir, err);
  }
  return { close: () => fs.closeSync(fd) };
}

function fsyncDirSync(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads meta, or creates it (with a new incarnation) for a new directory. Refuses other
 * nodes' and non-Tally dirs. A meta written before incarnations existed gets one now.
 */
export async function loadMeta(
  storage: Storage,
  dataDir: string,
  nodeId: string,
  role: Role = 'standalone',
  random: Random = systemRandom,
): Promise<Meta> {
  const file = path.join(dataDir, metaFileName);
  if (!(await storage.exists(file))) {
    const foreign = foreignEntries(await storage.list(dataDir));
    if (foreign.length > 0) throw refuseForeign(dataDir, foreign);
    const meta: Meta = {
      formatVersion: 1,
      nodeId,
      incarnation: randomId(random),
      epoch: 0,
      role,
      catchingUp: role === 'standby',
    };
    await writeMeta(storage, dataDir, meta);
    return meta;
  }
  let meta: Meta;
  try {
    meta = JSON.parse((await storage.readFile(file)).toString('utf8')) as Meta;
  } catch (err) {
    throw new DataDirError(`data-dir: ${file} is unreadable: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (
    meta.formatVersion !== 1 ||
    typeof meta.nodeId !== 'string' ||
    !Number.isSafeInteger(meta.epoch)
  ) {
    throw new DataDirError(`data-dir: ${file} is not a Tally meta file`);
  }
  if (meta.nodeId !== nodeId) {
    throw new DataDirError(
      `data-dir: ${dataDir} belongs to node '${meta.nodeId}', not '${nodeId}'`,
    );
  }
  if (typeof meta.incarnation !== 'string' || meta.incarnation === '') {
    meta = { ...meta, incarnation: randomId(random) };
    await writeMeta(storage, dataDir, meta);
  }
  return meta;
}

export function writeMeta(storage: Storage, dataDir: string, meta: Meta): Promise<void> {
  return writeFileAtomic(
    storage,
    path.join(dataDir, metaFileName),
    Buffer.from(JSON.stringify(meta), 'utf8'),
  );
}
