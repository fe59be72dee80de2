import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { FaultStorage } from '../testing/fault-storage';
import { FakeClock } from '../testing/fake-clock';
import { seededRandom } from '../testing/random';
import { encodeAllocate, readU64, type WalRecord } from './record';
import { listSegments } from './segment-files';
import { Wal } from './wal';

const logger = pino({ level: 'silent' });
const dir = '/d/wal';
const segmentSizeBytes = 4096;

async function openWal(storage: FaultStorage, fromIndex = 0) {
  await storage.mkdir('/d');
  const records: WalRecord[] = [];
  const { wal, recovery } = await Wal.open(
    { storage, dir, segmentSizeBytes, logger, clock: new FakeClock() },
    fromIndex,
    (r) => records.push(r),
  );
  return { wal, recovery, records };
}

/**
 * The records appended so far, by index, as the exact bytes handed to append(): what every
 * read must give back.
 */
class Expected {
  private readonly bytes = new Map<number, Buffer>();

  set(index: number, record: Buffer): void {
    this.bytes.set(index, record);
  }

  /** Drops records after `index` (mirrors truncateAfter). */
  cutAfter(index: number): void {
    for (const key of [...this.bytes.keys()]) if (key > index) this.bytes.delete(key);
  }

  /** The concatenated bytes of records from..to. */
  range(from: number, to: number): Buffer {
    const parts: Buffer[] = [];
    for (let i = from; i <= to; i++) {
      const record = this.bytes.get(i);
      if (!record) throw new Error(`test bug: no expected record ${i}`);
      parts.push(record);
    }
    return Buffer.concat(parts);
  }

  size(index: number): number {
    return (this.bytes.get(index) as Buffer).length;
  }
}

/**
 * Appends one batch of `count` allocate records numbered from wal.nextIndex, with namespaces of
 * varied length so records (and so offsets) differ in size.
 */
async function appendBatch(
  wal: Wal,
  expected: Expected,
  count: number,
  opts: { epoch?: number; rand?: () => number; tag?: string } = {},
): Promise<void> {
  const { epoch = 1, rand = () => 0, tag = 'ns' } = opts;
  const buf = Buffer.alloc(count * 400);
  let at = 0;
  const first = wal.nextIndex;
  for (let i = 0; i < count; i++) {
    const namespace = `${tag}-${'x'.repeat(Math.floor(rand() * 40))}`;
    const length = encodeAllocate(buf, at, epoch, first + i, namespace, (first + i) * 10, i + 1);
    expected.set(first + i, Buffer.from(buf.subarray(at, at + length)));
    at += length;
  }
  await wal.append(buf, at, count);
}

/** Appends `batches` batches of 1..12 records each (seeded sizes). */
async function fill(wal: Wal, expected: Expected, batches: number, seed: number): Promise<void> {
  const rand = seededRandom(seed);
  for (let b = 0; b < batches; b++) {
    await appendBatch(wal, expected, 1 + Math.floor(rand() * 12), { rand });
  }
}

/** Splits a read into records by their length fields; returns their indexes. */
function indexesIn(buf: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at < buf.length;) {
    const length = buf.readUInt32LE(at);
    expect(length).toBeGreaterThan(0);
    expect(at + length).toBeLessThanOrEqual(buf.length); // whole records only
    out.push(readU64(buf, at + 16));
    at += length;
  }
  return out;
}

type Read = { buf: Buffer; records: number };

/** One readFrom that must succeed, checked against what was appended. */
async function readChecked(
  wal: Wal,
  expected: Expected,
  from: number,
  maxBytes: number,
): Promise<Read> {
  const read = await wal.readFrom(from, maxBytes);
  expect(read, `readFrom(${from}) returned null`).not.toBeNull();
  const { buf, records } = read as Read;
  expect(records, `readFrom(${from}, ${maxBytes})`).toBeGreaterThan(0);
  const indexes = indexesIn(buf);
  expect(indexes, `readFrom(${from}, ${maxBytes}) indexes`).toEqual(
    Array.from({ length: records }, (_, i) => from + i),
  );
  expect(from + records - 1).toBeLessThan(wal.nextIndex);
  // At most maxBytes, unless a single record is bigger than that.
  if (records > 1) expect(buf.length).toBeLessThanOrEqual(maxBytes);
  expect(buf.equals(expected.range(from, from + records - 1)), `bytes of readFrom(${from})`).toBe(
    true,
  );
  return { buf, records };
}

/** Reads [from, nextIndex) in chunks of maxBytes; checks each chunk; returns all bytes. */
async function readAll(wal: Wal, expected: Expected, from: number, maxBytes: number) {
  const chunks: Buffer[] = [];
  let reads = 0;
  for (let next = from; next < wal.nextIndex; reads++) {
    const { buf, records } = await readChecked(wal, expected, next, maxBytes);
    chunks.push(buf);
    next += records;
  }
  expect(await wal.readFrom(wal.nextIndex, maxBytes)).toEqual({
    buf: Buffer.alloc(0),
    records: 0,
  });
  return { bytes: Buffer.concat(chunks), reads };
}

async function segmentStarts(storage: FaultStorage): Promise<number[]> {
  return (await listSegments(storage, dir)).map((s) => s.firstIndex);
}

describe('Wal.readFrom: sequential reads', () => {
  it.each([1, 100, 1000, 5000])(
    'reads every record once, in order, byte-identical, across segments (maxBytes %i)',
    async (maxBytes) => {
      const storage = new FaultStorage();
      const { wal } = await openWal(storage);
      const expected = new Expected();
      await fill(wal, expected, 120, 7);
      const last = wal.nextIndex - 1;
      expect(wal.segmentCount).toBeGreaterThan(5);

      const { bytes, reads } = await readAll(wal, expected, 1, maxBytes);
      expect(bytes.equals(expected.range(1, last))).toBe(true);
      expect(indexesIn(bytes)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
      // Chunks are as big as maxBytes lets them be: never more reads than records, and with a
      // budget bigger than a segment, about one read per segment.
      expect(reads).toBeLessThanOrEqual(last);
      if (maxBytes >= segmentSizeBytes) expect(reads).toBe(wal.segmentCount);

      // A second pass over the same Wal (its cursor now at the tail) reads the same bytes.
      expect((await readAll(wal, expected, 1, maxBytes)).bytes.equals(bytes)).toBe(true);
      await wal.close();
    },
  );

  it('maxBytes is honoured to the byte: a budget of exactly k records returns k', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    const expected = new Expected();
    await fill(wal, expected, 40, 11);
    const starts = await segmentStarts(storage);
    let checked = 0;
    for (let from = 1; from + 2 < wal.nextIndex; from += 7) {
      const three = expected.size(from) + expected.size(from + 1) + expected.size(from + 2);
      const exact = await readChecked(wal, expected, from, three);
      const short = await readChecked(wal, expected, from, three - 1);
      // Within one segment (so the segment end does not cut the read short first).
      if (!starts.some((s) => s > from && s <= from + 2)) {
        expect(exact.records, `from ${from}`).toBe(3);
        expect(exact.buf.length).toBe(three);
        expect(short.records, `from ${from}`).toBe(2);
        checked++;
      }
      expect(short.records, `from ${from}`).toBeLessThanOrEqual(2);
    }
    expect(checked).toBeGreaterThan(10);
    await wal.close();
  });

  it('a reader following the tail sees each new batch exactly once, as it is appended', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    const expected = new Expected();
    const rand = seededRandom(3);
    const seen: Buffer[] = [];
    let next = 1;
    for (let round = 0; round < 80; round++) {
      await appendBatch(wal, expected, 1 + Math.floor(rand() * 10), { rand });
      // Read part of what is there (sometimes all of it), like a sender pumping batches.
      const reads = 1 + Math.floor(rand() * 3);
      for (let r = 0; r < reads && next < wal.nextIndex; r++) {
        const { buf, records } = await readChecked(
          wal,
          expected,
          next,
          50 + Math.floor(rand() * 600),
        );
        seen.push(buf);
        next += records;
      }
    }
    while (next < wal.nextIndex) {
      const { buf, records } = await readChecked(wal, expected, next, 700);
      seen.push(buf);
      next += records;
    }
    expect(wal.segmentCount).toBeGreaterThan(3);
    expect(Buffer.concat(seen).equals(expected.range(1, wal.nextIndex - 1))).toBe(true);
    await wal.close();
  });
});

describe('Wal.readFrom: random access', () => {
  it('starts exactly at the index asked for, mid-segment and at segment edges, with or without a cursor', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    const expected = new Expected();
    await fill(wal, expected, 100, 5);
    const last = wal.nextIndex - 1;
    const starts = await segmentStarts(storage);
    expect(starts.length).toBeGreaterThan(4);
    const rand = seededRandom(99);
    const picks = [
      1,
      last,
      ...starts,
      ...starts.filter((s) => s > 1).map((s) => s - 1), // last record of each segment
      ...Array.from({ length: 60 }, () => 1 + Math.floor(rand() * last)),
    ];

    // Random order on one Wal: its cursor is sometimes behind the index, sometimes past it,
    // sometimes in another segment.
    for (const from of picks) await readChecked(wal, expected, from, 1 + Math.floor(rand() * 800));
    await wal.close();

    // A freshly opened Wal has no cursor at all.
    for (const from of picks.slice(0, 25)) {
      const fresh = (await openWal(storage.crash())).wal;
      await readChecked(fresh, expected, from, 500);
      await fresh.close();
    }
  });

  it('a read behind the cursor in the same segment starts from the index, not the cursor', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    const expected = new Expected();
    await fill(wal, expected, 3, 1); // a handful of records, all in the first segment
    expect(wal.segmentCount).toBe(1);
    const last = wal.nextIndex - 1;
    await readChecked(wal, expected, Math.ceil(last / 2), 100); // cursor mid-segment
    for (let from = last; from >= 1; from--) await readChecked(wal, expected, from, 100);
    await wal.close();
  });
});

describe('Wal.readFrom after compaction', () => {
  it('returns null for a compacted index and reads every kept one', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    const expected = new Expected();
    await fill(wal, expected, 100, 13);
    // Leave the cursor in a segment that compaction is about to delete.
    await readChecked(wal, expected, 5, 300);
    const upto = Math.floor((wal.nextIndex - 1) / 2);
    expect(await wal.compact(upto)).toBeGreaterThan(0);
    const first = wal.firstIndex;
    expect(first).toBeGreaterThan(1);
    expect(first).toBeLessThanOrEqual(upto + 1);

    for (const compacted of [1, 5, first - 1])
      expect(await wal.readFrom(compacted, 1000)).toBeNull();
    await readChecked(wal, expected, first, 1000);
    await readChecked(wal, expected, upto + 1, 1000);
    const { bytes } = await readAll(wal, expected, first, 1000);
    expect(bytes.equals(expected.range(first, wal.nextIndex - 1))).toBe(true);
    await wal.close();
  });
});

describe('Wal.readFrom after truncateAfter', () => {
  it('a cursor left past the cut does not serve stale bytes once new records fill the gap', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    const expected = new Expected();
    await appendBatch(wal, expected, 20); // indexes 1..20, all in one segment
    // Read to the tail: the cursor now sits at index 21, after the old record 20.
    await readAll(wal, expected, 1, 100_000);

    expect(await wal.truncateAfter(10)).toBe(10);
    expected.cutAfter(10);
    expect(await wal.readFrom(11, 1000)).toEqual({ buf: Buffer.alloc(0), records: 0 });

    // New records of another size (another epoch, as after log matching) fill 11..25.
    await appendBatch(wal, expected, 15, { epoch: 2, tag: 'after-the-truncation' });
    expect(wal.segmentCount).toBe(1);
    await readChecked(wal, expected, 21, 100_000);
    await readChecked(wal, expected, 11, 100_000);
    const { bytes } = await readAll(wal, expected, 1, 333);
    expect(bytes.equals(expected.range(1, 25))).toBe(true);
    await wal.close();
  });

  it('across segments: reads empty at the cut, then read back new appends, also after a reopen', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    const expected = new Expected();
    await fill(wal, expected, 100, 21);
    const oldLast = wal.nextIndex - 1;
    const starts = await segmentStarts(storage);
    expect(starts.length).toBeGreaterThan(4);
    // Cut in the middle of an early segment; the reader's cursor is in the last one.
    const k = Math.floor(((starts[1] as number) + (starts[2] as number)) / 2);
    await readAll(wal, expected, starts[starts.length - 1] as number, 200);

    expect(await wal.truncateAfter(k)).toBe(oldLast - k);
    expected.cutAfter(k);
    expect(wal.nextIndex).toBe(k + 1);
    expect(await wal.readFrom(k + 1, 1000)).toEqual({ buf: Buffer.alloc(0), records: 0 });
    await readChecked(wal, expected, k, 1000); // the record at the cut is still there

    // The new suffix (epoch 2, other sizes) runs past the old tail, over new segments.
    const rand = seededRandom(8);
    while (wal.nextIndex <= oldLast + 30) {
      await appendBatch(wal, expected, 1 + Math.floor(rand() * 12), {
        epoch: 2,
        rand,
        tag: 'new',
      });
    }
    const newLast = wal.nextIndex - 1;
    for (const maxBytes of [100, 1000, 5000]) {
      const { bytes } = await readAll(wal, expected, 1, maxBytes);
      expect(bytes.equals(expected.range(1, newLast))).toBe(true);
    }
    expect(wal.epochAt(k)).toBe(1);
    expect(wal.epochAt(k + 1)).toBe(2);
    await wal.close();

    const reopened = await openWal(storage.crash());
    expect(reopened.recovery.lastIndex).toBe(newLast);
    expect(reopened.records.map((r) => r.index)).toEqual(
      Array.from({ length: newLast }, (_, i) => i + 1),
    );
    expect(reopened.records.map((r) => r.epoch)).toEqual(
      Array.from({ length: newLast }, (_, i) => (i + 1 <= k ? 1 : 2)),
    );
    const { bytes } = await readAll(reopened.wal, expected, 1, 1000);
    expect(bytes.equals(expected.range(1, newLast))).toBe(true);
    await reopened.wal.close();
  });
});

describe('Wal.readFrom after truncateAfter at the edges', () => {
  it('a cut exactly at a segment boundary leaves an empty segment that new appends fill', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    const expected = new Expected();
    await fill(wal, expected, 60, 31);
    const starts = await segmentStarts(storage);
    const boundary = starts[2] as number;
    await readAll(wal, expected, boundary, 100); // cursor in segment 2, past the cut
    await wal.truncateAfter(boundary - 1);
    expected.cutAfter(boundary - 1);
    expect(wal.nextIndex).toBe(boundary);
    expect(await wal.readFrom(boundary, 1000)).toEqual({ buf: Buffer.alloc(0), records: 0 });
    await readChecked(wal, expected, boundary - 1, 1000);
    await appendBatch(wal, expected, 9, { epoch: 4, tag: 'refill-after-cut' });
    const { bytes } = await readAll(wal, expected, 1, 1000);
    expect(bytes.equals(expected.range(1, boundary + 8))).toBe(true);
    await wal.close();
    const reopened = await openWal(storage.crash());
    expect(reopened.recovery.lastIndex).toBe(boundary + 8);
    await reopened.wal.close();
  });

  it('a cut down to the compacted prefix empties the log; appends then read back from firstIndex', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    const expected = new Expected();
    await fill(wal, expected, 60, 41);
    await wal.compact(Math.floor(wal.nextIndex / 2));
    const first = wal.firstIndex;
    expect(first).toBeGreaterThan(1);
    await readAll(wal, expected, first, 500);
    await wal.truncateAfter(first - 1);
    expected.cutAfter(first - 1);
    expect(wal.nextIndex).toBe(first);
    expect(await wal.readFrom(first, 1000)).toEqual({ buf: Buffer.alloc(0), records: 0 });
    expect(await wal.readFrom(first - 1, 1000)).toBeNull();
    await appendBatch(wal, expected, 5, { epoch: 2, tag: 'fresh' });
    const { bytes } = await readAll(wal, expected, first, 1000);
    expect(bytes.equals(expected.range(first, first + 4))).toBe(true);
    await wal.close();
  });
});

describe('Wal opened after a snapshot install (fromIndex on an empty directory)', () => {
  it('starts at fromIndex + 1, reads back what it appends, and replays it on reopen', async () => {
    const storage = new FaultStorage();
    const { wal, recovery } = await openWal(storage, 500);
    expect(recovery).toEqual({ replayed: 0, lastIndex: 500, lastEpoch: 0, tornTail: null });
    expect(wal.nextIndex).toBe(501);
    expect(wal.firstIndex).toBe(501);
    expect(await wal.readFrom(500, 1000)).toBeNull(); // in the snapshot, not the log
    expect(await wal.readFrom(501, 1000)).toEqual({ buf: Buffer.alloc(0), records: 0 });

    const expected = new Expected();
    const rand = seededRandom(4);
    for (let b = 0; b < 40; b++) {
      await appendBatch(wal, expected, 1 + Math.floor(rand() * 12), { epoch: 3, rand });
    }
    const last = wal.nextIndex - 1;
    expect(wal.segmentCount).toBeGreaterThan(2);
    expect(wal.epochAt(501)).toBe(3);
    expect(wal.epochAt(500)).toBeNull();
    const { bytes } = await readAll(wal, expected, 501, 1000);
    expect(bytes.equals(expected.range(501, last))).toBe(true);
    await readChecked(wal, expected, 501, 1);
    await wal.close();

    const reopened = await openWal(storage.crash(), 500);
    expect(reopened.recovery.replayed).toBe(last - 500);
    expect(reopened.recovery.lastIndex).toBe(last);
    expect(reopened.recovery.lastEpoch).toBe(3);
    expect(reopened.records.map((r) => r.index)).toEqual(
      Array.from({ length: last - 500 }, (_, i) => 501 + i),
    );
    expect(reopened.wal.nextIndex).toBe(last + 1);
    expect(reopened.wal.epochs()).toEqual([{ index: 501, epoch: 3 }]);
    const again = await readAll(reopened.wal, expected, 501, 5000);
    expect(again.bytes.equals(expected.range(501, last))).toBe(true);
    await reopened.wal.close();

    // Without the snapshot the log is missing its beginning.
    await expect(openWal(storage.crash(), 0)).rejects.toThrow(/records 1\.\.500 are missing/);
  });
});
