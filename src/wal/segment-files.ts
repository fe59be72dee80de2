/**
 * Segment file names and the preallocation pipeline. A segment is named by the index of its
 * first record, 20 decimal digits so names sort in log order. The next segment is created
 * ahead of time as `next.tmp`, filled with zeros and fsynced, so appends never extend a file
 * (fdatasync then flushes data only, and a full disk shows up here, not mid-batch).
 */
import * as path from 'node:path';
import type { Storage } from './storage';
import type { Clock } from '../core/clock';
import { NoSpaceError, isErrno } from '../core/errors';

/** After the disk was found full, new segments are not attempted again for this long. */
export const noSpaceRetryMs = 1000;

/** The WAL's directory inside a data dir. */
export const walDirName = 'wal';
export const segmentSuffix = '.wal';
export const preallocName = 'next.tmp';
const segmentPattern = /^(\d{20})\.wal$/;

export function segmentName(firstIndex: number): string {
  return `${String(firstIndex).padStart(20, '0')}${segmentSuffix}`;
}

/** The first index named by a segment file name, or null if it is not a segment name. */
export function parseSegmentName(name: string): number | null {
  const match = segmentPattern.exec(name);
  return match ? Number(match[1]) : null;
}

/** The segment files in `dir`, in log order. */
export async function listSegments(
  storage: Storage,
  dir: string,
): Promise<Array<{ name: string; firstIndex: number }>> {
  return (await storage.list(dir))
    .map((name) => ({ name, firstIndex: parseSegmentName(name) }))
    .filter((s): s is { name: string; firstIndex: number } => s.firstIndex !== null)
    .sort((a, b) => a.firstIndex - b.firstIndex);
}

const zeroFillChunkBytes = 1024 * 1024;
let zeroFill: Buffer | null = null;

/** Creates `filePath` filled with `sizeBytes` zeros, fsynced. Removes it again on failure. */
export async function createZeroFilled(
  storage: Storage,
  filePath: string,
  sizeBytes: number,
): Promise<void> {
  zeroFill ??= Buffer.alloc(zeroFillChunkBytes);
  if (await storage.exists(filePath)) await storage.unlink(filePath);
  try {
    const file = await storage.open(filePath, 'create');
    try {
      for (let at = 0; at < sizeBytes; at += zeroFillChunkBytes) {
        await file.write(zeroFill, 0, Math.min(zeroFillChunkBytes, sizeBytes - at), at);
      }
      await file.datasync();
    } finally {
      await file.close();
    }
  } catch (err) {
    // A file that never became whole is never used: removing it is always safe.
    await storage.unlink(filePath).catch(() => undefined);
    if (isErrno(err, 'ENOSPC'))
      throw new NoSpaceError(`wal: no space to preallocate ${filePath}`, { cause: err });
    throw err;
  }
}

/** Keeps one zero-filled segment ready. take() hands it over and starts the next one. */
export class Preallocator {
  private pending: Promise<void> | null = null;
  private readonly tmpPath: string;
  /** Set when the disk was full: until then take() refuses at once instead of writing zeros. */
  private noSpaceUntilMs = 0;

  constructor(
    private readonly storage: Storage,
    dir: string,
    private readonly sizeBytes: number,
    private readonly clock: Clock,
  ) {
    this.tmpPath = path.join(dir, preallocName);
  }

  /** Starts preparing the next segment in the background (errors surface in take()). */
  start(): void {
    if (this.pending) return;
    const p = createZeroFilled(this.storage, this.tmpPath, this.sizeBytes);
    p.catch(() => undefined); // observed by take()
    this.pending = p;
  }

  /**
   * Waits for the prepared file and returns its path; the caller renames it into place. A
   * background attempt that failed (the disk was briefly full) is retried once now, so the
   * caller sees the disk as it is; a full disk is then not retried for noSpaceRetryMs, so a
   * node refusing requests does not fill the disk with zeros for each of them.
   */
  async take(): Promise<string> {
    if (this.clock.monotonicMs() < this.noSpaceUntilMs) {
      throw new NoSpaceError(`wal: no space to preallocate ${this.tmpPath} (retrying shortly)`);
    }
    this.start();
    const p = this.pending as Promise<void>;
    this.pending = null;
    try {
      await p.catch(() => createZeroFilled(this.storage, this.tmpPath, this.sizeBytes));
    } catch (err) {
      if (err instanceof NoSpaceError)
        this.noSpaceUntilMs = this.clock.monotonicMs() + noSpaceRetryMs;
      throw err;
    }
    return this.tmpPath;
  }

  /** Waits for any background preparation so no write outlives the WAL. */
  async settle(): Promise<void> {
    await this.pending?.catch(() => undefined);
  }
}
