/**
 * The node's data directory: an exclusive lock (fcntl, released by the kernel when the process
 * dies, SIGKILL included), the meta file {nodeId, epoch, role}, the snapshot and wal/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tryLock } from 'fs-native-extensions';
import { DataDirError } from '../core/errors';
import { writeFileAtomic, type Storage } from '../wal/storage';
import type { Role } from './types';

export const lockFileName = 'LOCK';
export const metaFileName = 'meta';
export const walDirName = 'wal';
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
  epoch: number;
  role: Role;
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

/** Creates the directory if needed and takes the exclusive lock. Startup only: sync I/O. */
export function lockDataDir(dataDir: string): DirLock {
  let fd: number;
  try {
    fs.mkdirSync(dataDir, { recursive: true });
    fd = fs.openSync(
      path.join(dataDir, lockFileName),
      fs.constants.O_RDWR | fs.constants.O_CREAT,
      0o644,
    );
  } catch (err) {
    throw unusable(dataDir, err);
  }
  if (!tryLock(fd)) {
    const holder = fs.readFileSync(path.join(dataDir, lockFileName), 'utf8').trim();
    fs.closeSync(fd);
    throw new DataDirError(
      `data-dir: ${dataDir} is locked by another running process${holder ? ` (pid ${holder})` : ''}`,
    );
  }
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, `${process.pid}\n`, 0);
  return { close: () => fs.closeSync(fd) };
}

/** Reads meta, or creates it for a new directory. Refuses other nodes' and non-Tally dirs. */
export async function loadMeta(storage: Storage, dataDir: string, nodeId: string): Promise<Meta> {
  const file = path.join(dataDir, metaFileName);
  if (!(await storage.exists(file))) {
    const foreign = (await storage.list(dataDir)).filter((name) => !known.has(name));
    if (foreign.length > 0) {
      throw new DataDirError(
        `data-dir: ${dataDir} is not a Tally data dir (found ${foreign
          .slice(0, 3)
          .map((n) => `'${n}'`)
          .join(', ')}); use an empty directory`,
      );
    }
    const meta: Meta = { formatVersion: 1, nodeId, epoch: 0, role: 'standalone' };
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
  return meta;
}

export function writeMeta(storage: Storage, dataDir: string, meta: Meta): Promise<void> {
  return writeFileAtomic(
    storage,
    path.join(dataDir, metaFileName),
    Buffer.from(JSON.stringify(meta), 'utf8'),
  );
}
