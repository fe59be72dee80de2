/**
 * Disk faults for the chaos runner, on a node's data directory while the node is down:
 *
 * - tail damage: the newest WAL segment (src/wal/segment-files.ts: fixed-size, preallocated,
 *   zero after the last record) loses or garbles the last bytes it holds. `torn` zeroes them,
 *   as a write cut short leaves a preallocated file: recovery must cut the torn record off and
 *   start. `garbled` overwrites them with random bytes, as a disk that damaged a record written
 *   whole: recovery must refuse to start (corruption) rather than serve from it — the runner
 *   then replaces the disk (wipes it) as an operator would.
 * - wipe: the data directory is deleted (a replaced disk); the node must come back as a new
 *   member and catch up, never serve from nothing (the incarnation check).
 * - full disk: the directory lives on a small tmpfs of its own (root: mount); filling it with a
 *   ballast file gives the node real ENOSPC, removing the ballast gives the space back.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { seededRandom } from '../core/seeded-random';
import { nonZeroEnd } from '../wal/decoder';
import { parseSegmentName, walDirName } from '../wal/segment-files';
import type { TailDamage } from './schedule';

/** A tail damage touches at most this many bytes (a few records: one group-commit batch's end). */
const tornBytesMax = 512;
const garbledBytesMax = 64;

/** What a tail damage did, for the runner's log line. */
export interface TailDamageDone {
  segment: string | null;
  bytes: number;
  at: number;
}

/** Damages the tail of the newest WAL segment in `dataDir` (the node must be down). */
export async function damageTail(
  dataDir: string,
  damage: TailDamage,
  seed: number,
  /** Exactly this many bytes (at most what the segment holds) instead of a seeded number. */
  bytesWanted?: number,
): Promise<TailDamageDone> {
  const walDir = path.join(dataDir, walDirName);
  const names = await fs.promises.readdir(walDir).catch(() => [] as string[]);
  const newest = names
    .filter((n) => parseSegmentName(n) !== null)
    .sort()
    .at(-1);
  if (newest === undefined) return { segment: null, bytes: 0, at: 0 };
  const file = path.join(walDir, newest);
  const buf = await fs.promises.readFile(file);
  const dataEnd = nonZeroEnd(buf, 0, buf.length);
  if (dataEnd === 0) return { segment: newest, bytes: 0, at: 0 };
  const rand = seededRandom(seed);
  const bytesMax = Math.min(dataEnd, damage === 'torn' ? tornBytesMax : garbledBytesMax);
  const bytes =
    bytesWanted === undefined ? 1 + Math.floor(rand() * bytesMax) : Math.min(bytesWanted, dataEnd);
  const at = dataEnd - bytes;
  const patch = Buffer.alloc(bytes);
  if (damage === 'garbled') for (let i = 0; i < bytes; i++) patch[i] = Math.floor(rand() * 256);
  const fd = await fs.promises.open(file, 'r+');
  try {
    await fd.write(patch, 0, bytes, at);
    await fd.datasync();
  } finally {
    await fd.close();
  }
  return { segment: newest, bytes, at };
}

/** Deletes a node's data directory (the node must be down): a replaced disk. */
export async function wipe(dataDir: string): Promise<void> {
  await fs.promises.rm(dataDir, { recursive: true, force: true });
}

/** Why a small tmpfs cannot be mounted here, or null when it can. */
export function tmpfsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'mounting a small tmpfs needs root';
  try {
    execFileSync('mount', ['--version'], { stdio: 'ignore' });
    execFileSync('umount', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'mount/umount are missing';
  }
  return null;
}

export function mountTmpfs(dir: string, sizeBytes: number): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/** Unmounts; lazily if something still holds it (a process we could not stop). */
export function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
  }
}

const ballastChunk = Buffer.alloc(1024 * 1024, 0x5a);

/** Fills the file system holding `ballastPath` until ENOSPC; returns the bytes written. */
export async function fill(ballastPath: string): Promise<number> {
  const fd = await fs.promises.open(ballastPath, 'w');
  let written = 0;
  try {
    for (let chunk = ballastChunk.length; chunk > 0;) {
      try {
        const { bytesWritten } = await fd.write(ballastChunk, 0, chunk);
        written += bytesWritten;
        if (bytesWritten < chunk) chunk = Math.floor(chunk / 2);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        chunk = Math.floor(chunk / 2); // down to the last few bytes
      }
    }
  } finally {
    await fd.close();
  }
  return written;
}

export async function unfill(ballastPath: string): Promise<void> {
  await fs.promises.rm(ballastPath, { force: true });
}
