/**
 * Checkpoint file: every counter plus the (epoch, index) of the last record it covers.
 *   bytes 0..8   magic "TALLYSN1"
 *   bytes 8..12  u32 LE length of the JSON body
 *   bytes 12..16 u32 LE CRC32C of the body
 *   bytes 16..   JSON {index, epoch, unixMs, counters: [[namespace, lastId], ...], floor?}
 *                (floor: namespaces not in counters start above it; absent = 0)
 * Written temp → fsync → rename → directory fsync, so a crash leaves the old or the new one.
 */
import * as path from 'node:path';
import { crc32c } from '../core/crc32c';
import { CorruptionError } from '../core/errors';
import { snapshotBytesMax } from '../core/limits';
import { writeFileAtomic, type Storage } from './storage';

export const snapshotFileName = 'snapshot';
const magic = Buffer.from('TALLYSN1', 'latin1');
const headerBytes = 16;

export interface Snapshot {
  index: number;
  epoch: number;
  unixMs: number;
  counters: Array<[string, number]>;
  /** Namespaces not in `counters` start above this ID (absent in older snapshots: 0). */
  floor?: number;
  /**
   * Where each epoch of the log up to `index` began, ascending (absent in older snapshots):
   * the log matching of replication needs them after the records themselves are compacted.
   */
  epochs?: Array<{ index: number; epoch: number }>;
}

/** Boundaries strictly ascending in index and epoch, none past `index`. */
export function epochHistoryValid(
  epochs: ReadonlyArray<{ index: number; epoch: number }>,
  index: number,
): boolean {
  let prev = { index: 0, epoch: -1 };
  for (const e of epochs) {
    if (typeof e !== 'object' || e === null) return false;
    if (!Number.isSafeInteger(e.index) || !Number.isSafeInteger(e.epoch)) return false;
    if (e.index <= prev.index || e.epoch <= prev.epoch || e.index > index) return false;
    prev = e;
  }
  return true;
}

export function encodeSnapshot(snapshot: Snapshot): Buffer {
  const body = Buffer.from(JSON.stringify(snapshot), 'utf8');
  const out = Buffer.allocUnsafe(headerBytes + body.length);
  magic.copy(out, 0);
  out.writeUInt32LE(body.length, 8);
  out.writeUInt32LE(crc32c(body), 12);
  body.copy(out, headerBytes);
  return out;
}

export function decodeSnapshot(data: Buffer, name: string): Snapshot {
  const fail = (why: string): never => {
    throw new CorruptionError(`snapshot: ${why} in ${name}`);
  };
  if (data.length < headerBytes || !data.subarray(0, 8).equals(magic)) fail('bad magic');
  const length = data.readUInt32LE(8);
  if (length > snapshotBytesMax || headerBytes + length !== data.length)
    fail(`bad length ${length}`);
  const body = data.subarray(headerBytes);
  if (crc32c(body) !== data.readUInt32LE(12)) fail('crc mismatch');
  let parsed: Snapshot;
  try {
    parsed = JSON.parse(body.toString('utf8')) as Snapshot;
  } catch {
    return fail('body is not JSON');
  }
  const entryOk = (e: unknown): boolean =>
    Array.isArray(e) &&
    typeof e[0] === 'string' &&
    Number.isSafeInteger(e[1]) &&
    (e[1] as number) >= 0;
  if (
    !Number.isSafeInteger(parsed.index) ||
    !Array.isArray(parsed.counters) ||
    !parsed.counters.every(entryOk) ||
    (parsed.floor !== undefined && !(Number.isSafeInteger(parsed.floor) && parsed.floor >= 0)) ||
    (parsed.epochs !== undefined &&
      !(Array.isArray(parsed.epochs) && epochHistoryValid(parsed.epochs, parsed.index)))
  ) {
    fail('malformed body');
  }
  return parsed;
}

export async function readSnapshot(storage: Storage, dataDir: string): Promise<Snapshot | null> {
  const file = path.join(dataDir, snapshotFileName);
  if (!(await storage.exists(file))) return null;
  return decodeSnapshot(await storage.readFile(file), file);
}

export async function writeSnapshot(
  storage: Storage,
  dataDir: string,
  snapshot: Snapshot,
): Promise<void> {
  await writeFileAtomic(storage, path.join(dataDir, snapshotFileName), encodeSnapshot(snapshot));
}
