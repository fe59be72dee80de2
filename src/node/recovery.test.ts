import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../core/errors';
import { FaultStorage } from '../testing/fault-storage';
import { inspectDataDir } from '../wal/inspect';
import { encodeSnapshot } from '../wal/snapshot';
import { writeFileAtomic } from '../wal/storage';
import { crc32c } from '../core/crc32c';
import { AckLog, alloc, openFaultNode, testDataDir, tracked } from '../testing/node-harness';
import type { CounterNode } from './types';
import { metaFileName, type Meta } from './data-dir';

const namespaces = ['a', 'b', 'urls'];

/** Concurrent batches with a checkpoint in the middle; small segments force rollovers. */
async function workload(node: CounterNode, acks: AckLog, rounds: number): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const batch = Array.from({ length: 1 + (round % 7) * 5 }, (_, i) =>
      tracked(node, acks, namespaces[(round + i) % 3] as string, 1 + (i % 4)),
    );
    if (round === Math.floor(rounds / 2)) batch.push(node.checkpoint().then(() => undefined));
    await Promise.all(batch);
  }
}

/** The invariants after a restart: nothing acknowledged lost, new IDs above all of it. */
async function expectRecovered(node: CounterNode, acked: Map<string, number>): Promise<void> {
  const status = node.status();
  for (const [ns, highest] of acked) {
    const lastId = status.namespaces.find((n) => n.name === ns)?.lastId ?? 0;
    expect(lastId, `namespace ${ns}`).toBeGreaterThanOrEqual(highest);
    expect((await alloc(node, ns, 1)).first).toBeGreaterThan(highest);
  }
}

describe('recovery with a fault-injecting disk', () => {
  it('a crash before any storage step (checkpoints and rollovers included) loses no acknowledged ID', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage, { segmentSizeBytes: 4096, checkpointRecords: 150 });
    const acks = new AckLog();
    const images: Array<{ image: FaultStorage; acked: Map<string, number>; op: string }> = [];
    storage.onOp = (op, target) =>
      images.push({ image: storage.crash(), acked: acks.copy(), op: `${op} ${target}` });
    await workload(node, acks, 90);
    storage.onOp = null;
    await node.close();
    const ops = new Set(images.map((i) => i.op.split(' ')[0]));
    expect([...ops].sort()).toEqual(['create', 'datasync', 'rename', 'syncDir', 'write']);
    expect(images.length).toBeGreaterThan(300);
    for (const { image, acked, op } of images) {
      const recovered = await openFaultNode(image, { segmentSizeBytes: 4096 }).catch(
        (err: Error) => {
          throw new Error(`recovery failed after a crash before "${op}": ${err.message}`);
        },
      );
      await expectRecovered(recovered, acked);
      await recovered.close();
    }
  });

  it('a last write torn at every byte offset recovers, keeps every acknowledged ID, and appends cleanly after', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage);
    const acks = new AckLog();
    await workload(node, acks, 10);
    const acked = acks.copy();
    const images: FaultStorage[] = [];
    storage.onOp = (op, target) => {
      // The first request of a burst goes out alone; tear the batch that carries the rest.
      if (op !== 'datasync' || !target.endsWith('.wal') || images.length > 0) return;
      if (storage.lastWriteBytes() < 500) return;
      for (let k = 0; k <= storage.lastWriteBytes(); k++)
        images.push(storage.crash({ tearLastWriteAt: k }));
    };
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => tracked(node, acks, namespaces[i % 3] as string, 2)),
    );
    storage.onOp = null;
    await node.close();
    expect(images.length).toBeGreaterThan(500); // one image per byte of an 11-record batch
    for (const image of images) {
      const recovered = await openFaultNode(image);
      await expectRecovered(recovered, acked);
      const after = await alloc(recovered, 'a', 5);
      await recovered.close();
      // The torn bytes were zeroed durably: the log now ends clean, not torn again.
      const report = await inspectDataDir(testDataDir, undefined, image);
      expect(report.tornTail).toBeNull();
      expect(report.corruption).toBeNull();
      const again = await openFaultNode(image);
      expect(again.status().namespaces.find((n) => n.name === 'a')?.lastId).toBe(after.first + 4);
      await again.close();
    }
  });

  it('a torn tail is marked in meta before it is cut: a crash at any step of the cut still knows the log may have lost records', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage);
    const acks = new AckLog();
    await workload(node, acks, 4);
    let torn: FaultStorage | null = null;
    storage.onOp = (op, target) => {
      if (op !== 'datasync' || !target.endsWith('.wal') || torn !== null) return;
      if (storage.lastWriteBytes() < 100) return;
      // Not half: two records of one size would end whole there (a clean end, not a tear).
      torn = storage.crash({ tearLastWriteAt: Math.floor(storage.lastWriteBytes() / 2) + 3 });
    };
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => tracked(node, acks, namespaces[i % 3] as string, 2)),
    );
    storage.onOp = null;
    await node.close();
    const image = torn as FaultStorage | null;
    if (image === null) throw new Error('no batch was torn');
    const metaOf = async (disk: FaultStorage) =>
      JSON.parse(
        (await disk.readFile(path.join(testDataDir, metaFileName))).toString('utf8'),
      ) as Meta;
    expect((await metaOf(image)).tailCut).toBeUndefined();

    // Recovery with a crash image taken before every storage step it makes.
    const images: FaultStorage[] = [];
    image.onOp = () => images.push(image.crash());
    const recovered = await openFaultNode(image);
    image.onOp = null;
    await recovered.close();
    expect((await metaOf(image)).tailCut).toBe(true);
    expect(images.length).toBeGreaterThan(2);
    for (const crashed of images) {
      const report = await inspectDataDir(testDataDir, undefined, crashed);
      const marked = (await metaOf(crashed)).tailCut === true;
      expect(report.tornTail !== null || marked).toBe(true);
    }
  });

  it('a bit flipped anywhere in synced WAL data is refused with the file and offset, never truncated', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage, { segmentSizeBytes: 4096 });
    const acks = new AckLog();
    await workload(node, acks, 12);
    await node.close();
    const segments = storage.files().filter((f) => f.endsWith('.wal'));
    expect(segments.length).toBeGreaterThan(1);
    let checked = 0;
    for (const segment of segments) {
      const data = storage.contents(segment);
      let dataEnd = data.length;
      while (dataEnd > 0 && data[dataEnd - 1] === 0) dataEnd--;
      const isLast = segment === segments[segments.length - 1];
      // Every byte of the records, and the zeroed space after them — except, in the last
      // segment, the first header's worth of it: one stray byte there is indistinguishable
      // from a new record whose write was cut short, and cutting it off loses nothing.
      const offsets = Array.from(
        { length: Math.min(dataEnd + 96, data.length) },
        (_, i) => i,
      ).filter((offset) => !isLast || offset < dataEnd || offset >= dataEnd + 32);
      for (const offset of offsets) {
        const image = storage.crash();
        image.flipBit(segment, offset, offset % 8);
        const err = await openFaultNode(image, { segmentSizeBytes: 4096 }).then(
          (n) => n.close().then(() => null),
          (e: unknown) => e,
        );
        expect(err, `flip at ${path.basename(segment)}:${offset}`).toBeInstanceOf(CorruptionError);
        const match = /in segment (\S+) at offset (\d+)/.exec((err as Error).message);
        expect(match?.[1]).toBe(path.basename(segment));
        expect(Number(match?.[2])).toBeLessThanOrEqual(offset);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });

  it('a damaged snapshot is refused with its file name', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage);
    await alloc(node, 'a', 3);
    await node.checkpoint();
    await node.close();
    const image = storage.crash();
    image.flipBit(path.join(testDataDir, 'snapshot'), 20, 2);
    await expect(openFaultNode(image)).rejects.toThrow(
      /snapshot: crc mismatch in \/data\/snapshot/,
    );
  });

  it('a WAL that vanished (segments deleted) is refused, not started empty', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage);
    await alloc(node, 'a', 5);
    await node.close();
    const image = storage.crash();
    for (const f of image.files().filter((f) => f.endsWith('.wal'))) await image.unlink(f);
    await image.syncDir(path.join(testDataDir, 'wal'));
    await expect(openFaultNode(image)).rejects.toThrow(/the WAL is missing/);
  });

  it('a snapshot with a valid CRC but a malformed body is refused as corruption naming the file', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage);
    await node.close();
    const body = Buffer.from('{"index":1,"counters":[["a",-4]]}');
    const bad = encodeSnapshot({ index: 1, epoch: 1, unixMs: 0, counters: [] });
    const forged = Buffer.concat([bad.subarray(0, 8), Buffer.alloc(8), body]);
    forged.writeUInt32LE(body.length, 8);
    forged.writeUInt32LE(crc32c(body), 12);
    await writeFileAtomic(storage, path.join(testDataDir, 'snapshot'), forged);
    const err = await openFaultNode(storage).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as Error).message).toBe('snapshot: malformed body in /data/snapshot');
  });

  it('a snapshot whose epoch boundaries are out of order or past its index is refused as corruption', async () => {
    for (const epochs of [
      [
        { index: 5, epoch: 2 },
        { index: 3, epoch: 3 },
      ],
      [
        { index: 1, epoch: 2 },
        { index: 3, epoch: 2 },
      ],
      [{ index: 9, epoch: 1 }],
      [{ index: 1.5, epoch: 1 }],
    ]) {
      const storage = new FaultStorage();
      await (await openFaultNode(storage)).close();
      const bad = encodeSnapshot({ index: 8, epoch: 1, unixMs: 0, counters: [], epochs });
      await writeFileAtomic(storage, path.join(testDataDir, 'snapshot'), bad);
      const err = await openFaultNode(storage).catch((e: unknown) => e);
      expect(err, JSON.stringify(epochs)).toBeInstanceOf(CorruptionError);
    }
  });
});
