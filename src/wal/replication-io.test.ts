import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../core/errors';
import { FaultStorage } from '../testing/fault-storage';
import { FakeClock } from '../testing/fake-clock';
import { inspectDataDir } from './inspect';
import { encodeAllocate } from './record';
import { verifyBatch } from './replication-io';
import { Wal } from './wal';

const logger = pino({ level: 'silent' });

async function openWal(storage: FaultStorage) {
  await storage.mkdir('/d');
  const indexes: number[] = [];
  const { wal, recovery } = await Wal.open(
    { storage, dir: '/d/wal', segmentSizeBytes: 4096, logger, clock: new FakeClock() },
    0,
    (r) => indexes.push(r.index),
  );
  return { wal, recovery, indexes };
}

function encodeBatch(firstIndex: number, records: number, epoch = 1): Buffer {
  const buf = Buffer.alloc(records * 64);
  let at = 0;
  for (let i = 0; i < records; i++)
    at += encodeAllocate(buf, at, epoch, firstIndex + i, 'ns', firstIndex + i, 1);
  return buf.subarray(0, at);
}

async function appendRecords(wal: Wal, batches: number, perBatch: number): Promise<void> {
  for (let b = 0; b < batches; b++) {
    const buf = encodeBatch(wal.nextIndex, perBatch);
    await wal.append(buf, buf.length, perBatch);
  }
}

describe('verifyBatch (records received from a peer)', () => {
  it('accepts whole, consecutive, CRC-valid records', () => {
    const buf = encodeBatch(7, 5, 3);
    expect(verifyBatch(buf, buf.length, 7, 3)).toEqual({
      records: 5,
      firstIndex: 7,
      lastIndex: 11,
      lastEpoch: 3,
    });
  });

  it('rejects a lower epoch, an index gap, a broken CRC and a cut-off record, naming the offset', () => {
    const good = encodeBatch(7, 3, 3);
    expect(() => verifyBatch(good, good.length, 7, 4)).toThrow(
      /epoch 3 after epoch 4 in batch at offset 0/,
    );
    expect(() => verifyBatch(good, good.length, 6, 3)).toThrow(/record index 7, expected 6/);
    const flipped = Buffer.from(good);
    flipped[40] = (flipped[40] as number) ^ 1;
    expect(() => verifyBatch(flipped, flipped.length, 7, 3)).toThrow(CorruptionError);
    expect(() => verifyBatch(good, good.length - 5, 7, 3)).toThrow(/replication: .* at offset \d+/);
    expect(() => verifyBatch(Buffer.alloc(0), 0, 7, 3)).toThrow(/empty batch/);
  });
});

describe('Wal.readFrom (catch-up source)', () => {
  it('returns the on-disk bytes of records from an index, bounded by maxBytes and the durable tail', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    await appendRecords(wal, 20, 10);
    const read = await wal.readFrom(37, 500);
    expect(read).not.toBeNull();
    const { buf, records } = read as { buf: Buffer; records: number };
    expect(records).toBeGreaterThan(0);
    expect(buf.length).toBeLessThanOrEqual(500);
    expect(verifyBatch(buf, buf.length, 37, 1).lastIndex).toBe(36 + records);
    expect(await wal.readFrom(wal.nextIndex, 500)).toEqual({ buf: Buffer.alloc(0), records: 0 });
    await wal.close();
  });

  it('reads every record once when a reader walks the whole log', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    await appendRecords(wal, 30, 7);
    const seen: number[] = [];
    for (let next = 1; next < wal.nextIndex;) {
      const read = (await wal.readFrom(next, 1000)) as { buf: Buffer; records: number };
      const batch = verifyBatch(read.buf, read.buf.length, next, 0);
      for (let i = batch.firstIndex; i <= batch.lastIndex; i++) seen.push(i);
      next = batch.lastIndex + 1;
    }
    expect(seen).toEqual(Array.from({ length: 210 }, (_, i) => i + 1));
    await wal.close();
  });

  it('returns null for records compacted away (the reader needs a snapshot)', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    await appendRecords(wal, 30, 10);
    await wal.compact(200);
    expect(wal.firstIndex).toBeGreaterThan(1);
    expect(await wal.readFrom(1, 1000)).toBeNull();
    expect(await wal.readFrom(wal.firstIndex, 1000)).not.toBeNull();
    await wal.close();
  });
});

describe('Wal.truncateAfter (log matching)', () => {
  it('removes the suffix durably, across segments, and appends continue from the cut', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    await appendRecords(wal, 30, 10); // 300 records over several 4 KiB segments
    const segmentsBefore = wal.segmentCount;
    expect(await wal.truncateAfter(123)).toBe(177);
    expect(wal.nextIndex).toBe(124);
    expect(wal.segmentCount).toBeLessThan(segmentsBefore);
    await appendRecords(wal, 1, 5);
    await wal.close();
    const reopened = await openWal(storage.crash());
    expect(reopened.recovery.lastIndex).toBe(128);
    expect(reopened.indexes).toEqual(Array.from({ length: 128 }, (_, i) => i + 1));
    await reopened.wal.close();
  });

  it('a crash before any step of a truncation leaves a prefix of the old log, never a gap', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    await appendRecords(wal, 30, 10);
    const images: FaultStorage[] = [];
    storage.onOp = () => images.push(storage.crash());
    await wal.truncateAfter(57);
    storage.onOp = null;
    await wal.close();
    expect(images.length).toBeGreaterThan(3);
    for (const image of images) {
      const report = await inspectDataDir('/d', undefined, image);
      expect(report.corruption).toBeNull();
      expect(report.lastIndex).toBeGreaterThanOrEqual(57);
      const reopened = await openWal(image);
      expect(reopened.indexes).toEqual(
        Array.from({ length: reopened.recovery.lastIndex }, (_, i) => i + 1),
      );
      await reopened.wal.close();
    }
    const final = await openWal(storage.crash());
    expect(final.recovery.lastIndex).toBe(57);
    await final.wal.close();
  });

  it('zeroes stray bytes past the tail (left by a refused write) along with the suffix', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    await appendRecords(wal, 3, 10);
    const segment = storage
      .files()
      .filter((f) => f.endsWith('.wal'))
      .pop() as string;
    const tail = storage.contents(segment).length - 200;
    const file = await storage.open(segment, 'readwrite');
    await file.write(Buffer.alloc(40, 0x5a), 0, 40, tail);
    await file.datasync();
    await wal.truncateAfter(12);
    await wal.close();
    const report = await inspectDataDir('/d', undefined, storage.crash());
    expect(report.corruption).toBeNull();
    expect(report.tornTail).toBeNull();
    expect(report.lastIndex).toBe(12);
  });

  it('is a no-op at or past the tail', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    await appendRecords(wal, 2, 5);
    expect(await wal.truncateAfter(10)).toBe(0);
    expect(await wal.truncateAfter(99)).toBe(0);
    expect(wal.nextIndex).toBe(11);
    await wal.close();
  });
});

describe('Wal.epochAt (log matching)', () => {
  async function appendEpoch(wal: Wal, records: number, epoch: number): Promise<void> {
    const buf = encodeBatch(wal.nextIndex, records, epoch);
    await wal.append(buf, buf.length, records);
  }

  it('answers the epoch of any record in the log, after appends, a reopen and a truncation', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    await appendEpoch(wal, 10, 1);
    await appendEpoch(wal, 10, 2);
    // One batch that crosses an epoch change.
    const mixed = Buffer.concat([encodeBatch(21, 2, 2), encodeBatch(23, 3, 5)]);
    await wal.append(mixed, mixed.length, 5);
    const expected = (w: Wal): Array<number | null> =>
      [0, 1, 10, 11, 22, 23, 25, 26].map((i) => w.epochAt(i));
    expect(expected(wal)).toEqual([null, 1, 1, 2, 2, 5, 5, null]);
    await wal.close();

    const reopened = (await openWal(storage.crash())).wal;
    expect(expected(reopened)).toEqual([null, 1, 1, 2, 2, 5, 5, null]);
    await reopened.truncateAfter(15);
    expect([15, 16].map((i) => reopened.epochAt(i))).toEqual([2, null]);
    await appendEpoch(reopened, 2, 6);
    expect([15, 16, 17].map((i) => reopened.epochAt(i))).toEqual([2, 6, 6]);
    await reopened.close();
  });
});
