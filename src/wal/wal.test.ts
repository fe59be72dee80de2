import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AssertionFailure } from '../core/assert';
import { NoSpaceError, StorageFatalError } from '../core/errors';
import { FaultStorage } from '../testing/fault-storage';
import { inspectDataDir } from './inspect';
import { encodeAllocate } from './record';
import { Wal } from './wal';
import { FakeClock } from '../testing/fake-clock';
import { noSpaceRetryMs, segmentName } from './segment-files';

const logger = pino({ level: 'silent' });
const dir = '/d/wal';

async function openWal(storage: FaultStorage, fromIndex = 0, clock = new FakeClock()) {
  await storage.mkdir('/d');
  const indexes: number[] = [];
  const { wal, recovery } = await Wal.open(
    { storage, dir, segmentSizeBytes: 4096, logger, clock },
    fromIndex,
    (r) => indexes.push(r.index),
  );
  return { wal, recovery, indexes };
}

async function appendBatch(wal: Wal, records: number, beforeWrite?: () => void): Promise<void> {
  const buf = Buffer.alloc(records * 64);
  let at = 0;
  for (let i = 0; i < records; i++)
    at += encodeAllocate(buf, at, 1, wal.nextIndex + i, 'ns', 1 + i, 1);
  await wal.append(buf, at, records, beforeWrite);
}

describe('wal', () => {
  it('cuts a torn tail durably at open, so the log verifies clean before anything new is written', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    await appendBatch(wal, 3);
    let images: FaultStorage[] = [];
    storage.onOp = (op) => {
      if (op === 'datasync' && images.length === 0) {
        images = Array.from({ length: storage.lastWriteBytes() - 1 }, (_, k) =>
          storage.crash({ tearLastWriteAt: k + 1 }),
        );
      }
    };
    await appendBatch(wal, 5);
    expect(images.length).toBeGreaterThan(200);
    for (const image of images) {
      const reopened = await openWal(image);
      expect(reopened.indexes.slice(0, 3)).toEqual([1, 2, 3]);
      await reopened.wal.close();
      const report = await inspectDataDir('/d', undefined, image);
      expect(report.corruption).toBeNull();
      expect(report.tornTail).toBeNull();
      expect(report.lastIndex).toBe(reopened.recovery.lastIndex);
    }
  });

  it('rolls over into preallocated segments and compacts whole segments below an index', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    for (let i = 0; i < 60; i++) await appendBatch(wal, 10);
    expect(wal.segmentCount).toBeGreaterThan(5);
    const removed = await wal.compact(450);
    expect(removed).toBeGreaterThan(3);
    await wal.close();
    // Without the snapshot that covers them, missing records are refused...
    await expect(openWal(storage.crash())).rejects.toThrow(/records 1\.\.\d+ are missing/);
    // ...and from the snapshot index the tail replays complete.
    const reopened = await openWal(storage.crash(), 450);
    expect(reopened.recovery.lastIndex).toBe(600);
    expect(reopened.indexes).toEqual(Array.from({ length: 150 }, (_, i) => 451 + i));
    await reopened.wal.close();
  });

  it('ENOSPC while preparing a segment refuses the batch, advances nothing, backs off, and recovers when space returns', async () => {
    const storage = new FaultStorage();
    const clock = new FakeClock();
    const { wal } = await openWal(storage, 0, clock);
    storage.failOn('create', 'ENOSPC', /next\.tmp/);
    let creates = 0;
    storage.onOp = (op) => void (op === 'create' && creates++);
    let refused = 0;
    for (let i = 0; i < 30; i++) {
      const before = wal.nextIndex;
      try {
        await appendBatch(wal, 10);
      } catch (err) {
        expect(err).toBeInstanceOf(NoSpaceError);
        expect(wal.nextIndex).toBe(before);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(10);
    // One failed background attempt and one retry; later refusals touch the disk no more.
    expect(creates).toBeLessThanOrEqual(2);
    const lastBefore = wal.nextIndex - 1;
    storage.clearFaults();
    await expect(appendBatch(wal, 10)).rejects.toBeInstanceOf(NoSpaceError); // still backing off
    clock.advance(noSpaceRetryMs);
    await appendBatch(wal, 10);
    await wal.close();
    const reopened = await openWal(storage.crash());
    expect(reopened.recovery.lastIndex).toBe(lastBefore + 10);
    await reopened.wal.close();
  });

  it('an ENOSPC from the fsync that zeroes the leftovers of a refused write is fatal, and every later append is refused', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    storage.failOn('write', 'ENOSPC', /\.wal$/, 1);
    await expect(appendBatch(wal, 10)).rejects.toBeInstanceOf(NoSpaceError);
    storage.failOn('datasync', 'ENOSPC', /\.wal$/, 1);
    await expect(appendBatch(wal, 10)).rejects.toBeInstanceOf(StorageFatalError);
    await expect(appendBatch(wal, 1)).rejects.toBeInstanceOf(StorageFatalError);
    expect(wal.nextIndex).toBe(1);
    await wal.close();
  });

  it('with a beforeWrite hook (replicated), an ENOSPC from the write after the hook ran is fatal and every later append is refused', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    await appendBatch(wal, 2);
    let handedOver = 0;
    storage.failOn('write', 'ENOSPC', /\.wal$/, 1);
    await expect(appendBatch(wal, 10, () => handedOver++)).rejects.toBeInstanceOf(
      StorageFatalError,
    );
    expect(handedOver).toBe(1);
    // The disk has room again, yet indexes 3.. are never written with other records.
    await expect(appendBatch(wal, 1, () => handedOver++)).rejects.toBeInstanceOf(StorageFatalError);
    await expect(appendBatch(wal, 1)).rejects.toBeInstanceOf(StorageFatalError);
    expect(handedOver).toBe(1);
    expect(wal.nextIndex).toBe(3);
    await wal.close();
  });

  it('with a beforeWrite hook, a disk found full at rollover refuses the batch (NoSpaceError) before the hook runs', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    storage.failOn('create', 'ENOSPC', /next\.tmp/);
    let handedOver = 0;
    let refused = 0;
    for (let i = 0; i < 30; i++) {
      try {
        await appendBatch(wal, 10, () => handedOver++);
      } catch (err) {
        expect(err).toBeInstanceOf(NoSpaceError);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(10);
    expect(handedOver).toBe(30 - refused);
    await wal.close();
  });

  it('runs beforeWrite before the batch reaches the segment, then writes it durably', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    await appendBatch(wal, 2);
    const segment = `${dir}/${segmentName(1)}`;
    const before = storage.contents(segment);
    const ops: string[] = [];
    storage.onOp = (op, target) => void (target === segment && ops.push(op));
    await appendBatch(wal, 3, () => {
      ops.push('beforeWrite');
      expect(storage.contents(segment)).toEqual(before);
    });
    expect(ops).toEqual(['beforeWrite', 'write', 'datasync']);
    expect(storage.contents(segment)).not.toEqual(before);
    // Durable once append resolved: a crash right after it keeps all five records.
    const reopened = await openWal(storage.crash());
    expect(reopened.indexes).toEqual([1, 2, 3, 4, 5]);
    await reopened.wal.close();
    await wal.close();
  });

  it('ENOSPC from write() is recoverable: its bytes are zeroed before a shorter batch follows', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    await appendBatch(wal, 2);
    storage.failOn('write', 'ENOSPC', /\.wal$/, 1);
    await expect(appendBatch(wal, 10)).rejects.toBeInstanceOf(NoSpaceError);
    await appendBatch(wal, 1);
    await wal.close();
    const report = await inspectDataDir('/d', undefined, storage.crash());
    expect(report.corruption).toBeNull();
    expect(report.lastIndex).toBe(3);
  });

  it('without a hook, an ENOSPC reported by the durable write itself stays retryable and its bytes are zeroed before the next batch', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    await appendBatch(wal, 2);
    // O_DSYNC reports a failed flush as the write's own error: written, not durable.
    storage.failOn('datasync', 'ENOSPC', /\.wal$/, 1);
    await expect(appendBatch(wal, 10)).rejects.toBeInstanceOf(NoSpaceError);
    expect(wal.nextIndex).toBe(3);
    await appendBatch(wal, 1);
    await wal.close();
    // Neither what the disk holds now nor what survives a crash shows records 4.. of the refusal.
    for (const image of [storage, storage.crash()]) {
      const report = await inspectDataDir('/d', undefined, image);
      expect(report.corruption).toBeNull();
      expect(report.lastIndex).toBe(3);
    }
  });

  it('an fsync error is fatal (StorageFatalError), never retried as success', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    storage.failOn('datasync', 'EIO', /\.wal$/, 1);
    await expect(appendBatch(wal, 2)).rejects.toBeInstanceOf(StorageFatalError);
    expect(wal.nextIndex).toBe(1);
    await wal.close();
  });
});

describe('wal segment preallocation', () => {
  it('retries a failed background preallocation when the segment is needed, instead of replaying the old error', async () => {
    const storage = new FaultStorage();
    // The background attempt started at open fails once; the disk then has room again.
    storage.failOn('create', 'ENOSPC', /next\.tmp/, 1);
    const { wal } = await openWal(storage);
    for (let i = 0; i < 20; i++) await appendBatch(wal, 10);
    expect(wal.segmentCount).toBeGreaterThan(1);
    await wal.close();
  });

  it('asserts before writing that a batch continues the log: no gap, no repeat, no lower epoch, as many records as announced', async () => {
    const storage = new FaultStorage();
    const { wal } = await openWal(storage);
    const batch = (epoch: number, firstIndex: number, records: number) => {
      const buf = Buffer.alloc(records * 64);
      let at = 0;
      for (let i = 0; i < records; i++)
        at += encodeAllocate(buf, at, epoch, firstIndex + i, 'ns', 1 + i, 1);
      return { buf, at };
    };
    const ok = batch(2, 1, 2);
    await wal.append(ok.buf, ok.at, 2);
    const before = storage.contents(`${dir}/${segmentName(1)}`);
    const bad = [
      { ...batch(2, 4, 1), count: 1, why: /does not continue the log at index 3/ }, // a gap
      { ...batch(2, 2, 1), count: 1, why: /does not continue the log at index 3/ }, // a repeat
      { ...batch(1, 3, 1), count: 1, why: /after epoch 2/ }, // an epoch going down
      { ...batch(2, 3, 2), count: 3, why: /a batch of 3 records .* holds 2/ },
    ];
    for (const b of bad) {
      const err = await wal.append(b.buf, b.at, b.count).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AssertionFailure);
      expect((err as Error).message).toMatch(b.why);
    }
    // Nothing was written: the log still continues at 3.
    expect(wal.nextIndex).toBe(3);
    expect(storage.contents(`${dir}/${segmentName(1)}`)).toEqual(before);
    const next = batch(3, 3, 1);
    await wal.append(next.buf, next.at, 1);
    expect(wal.nextIndex).toBe(4);
    await wal.close();
  });
});
