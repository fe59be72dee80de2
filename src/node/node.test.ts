import { describe, expect, it, vi } from 'vitest';
import { AssertionFailure } from '../core/assert';
import {
  ConfigError,
  CounterExhaustedError,
  DeadlineExceededError,
  InvalidArgumentError,
  NoSpaceError,
  OverloadedError,
  StorageFatalError,
  UnavailableError,
} from '../core/errors';
import { idMax } from '../core/limits';
import { FaultStorage } from '../testing/fault-storage';
import { alloc, openFaultNode } from '../testing/node-harness';
import { writeSnapshot } from '../wal/snapshot';
import { noSpaceRetryMs } from '../wal/segment-files';
import { FakeClock } from '../testing/fake-clock';
import { Pair } from '../testing/replication-harness';
import type { CounterNode } from './types';

/** A node dir whose counters start from `counters` (a real WAL, then a snapshot over it). */
async function seededStorage(counters: Array<[string, number]>): Promise<FaultStorage> {
  const storage = new FaultStorage();
  const node = await openFaultNode(storage);
  const { lastIndex, epoch } = node.status();
  await node.close();
  await writeSnapshot(storage, '/data', { index: lastIndex, epoch, unixMs: 0, counters });
  return storage;
}

function settle<T>(p: Promise<T>): Promise<{ ok: T } | { err: unknown }> {
  return p.then(
    (ok) => ({ ok }),
    (err: unknown) => ({ err }),
  );
}

describe('node', () => {
  it('hands out increasing IDs per namespace and keeps them across a clean restart', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage);
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => alloc(node, i % 2 ? 'a' : 'b', 3)),
    );
    const firstsA = results.filter((_, i) => i % 2).map((r) => r.first);
    expect(firstsA).toEqual(Array.from({ length: 150 }, (_, i) => 1 + 3 * i));
    await node.close();
    const again = await openFaultNode(storage);
    expect((await alloc(again, 'a', 1)).first).toBe(451);
    expect(again.status().epoch).toBe(2);
    await again.close();
  });

  it('groups concurrent requests into one write + fdatasync per batch', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage);
    let syncs = 0;
    storage.onOp = (op) => void (op === 'datasync' && syncs++);
    await Promise.all(Array.from({ length: 100 }, () => alloc(node, 'a', 1)));
    storage.onOp = null;
    // All 100 were submitted in one tick: the batch starts after them (setImmediate), so one.
    expect(syncs).toBe(1);
    await node.close();
  });

  it('rejects bad input with InvalidArgumentError and keeps serving', async () => {
    const node = await openFaultNode(new FaultStorage());
    for (const [ns, count] of [
      ['', 1],
      ['x'.repeat(65), 1],
      ['Upper', 1],
      ['spa ce', 1],
      ['a', 0],
      ['a', 10_001],
      ['a', 1.5],
    ] as const) {
      await expect(alloc(node, ns, count)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect((await alloc(node, 'x'.repeat(64), 1)).first).toBe(1);
    await node.close();
  });

  it('refuses requests beyond the queue bound with OverloadedError; the rest succeed', async () => {
    const node = await openFaultNode(new FaultStorage(), { queuedRequestsMax: 10 });
    const outcomes = await Promise.all(
      Array.from({ length: 100 }, () => settle(alloc(node, 'a', 1))),
    );
    const refused = outcomes.filter((o) => 'err' in o);
    expect(refused.length).toBeGreaterThan(0);
    for (const o of refused) expect((o as { err: unknown }).err).toBeInstanceOf(OverloadedError);
    const firsts = outcomes
      .filter((o) => 'ok' in o)
      .map((o) => (o as { ok: { first: number } }).ok.first);
    expect(firsts).toEqual(firsts.map((_, i) => i + 1));
    await node.close();
  });

  it('drops a request whose deadline passed before it was written', async () => {
    const node = await openFaultNode(new FaultStorage());
    await expect(alloc(node, 'a', 1, Date.now() - 1)).rejects.toBeInstanceOf(DeadlineExceededError);
    expect((await alloc(node, 'a', 1, Date.now() + 10_000)).first).toBe(1);
    await node.close();
  });

  it('refuses to pass the maximum ID and never wraps', async () => {
    const node = await openFaultNode(await seededStorage([['big', idMax - 5]]));
    expect((await alloc(node, 'big', 5)).first).toBe(idMax - 4);
    await expect(alloc(node, 'big', 1)).rejects.toBeInstanceOf(CounterExhaustedError);
    expect((await alloc(node, 'other', 1)).first).toBe(1);
    await node.close();
  });

  it('refuses new namespaces past the limit with OverloadedError', async () => {
    const counters = Array.from({ length: 10_000 }, (_, i): [string, number] => [`ns${i}`, 1]);
    const node = await openFaultNode(await seededStorage(counters));
    await expect(alloc(node, 'one-too-many', 1)).rejects.toBeInstanceOf(OverloadedError);
    expect((await alloc(node, 'ns7', 1)).first).toBe(2);
    await node.close();
  });

  it('on a full disk refuses with NoSpaceError, keeps what was acknowledged, resumes when space returns', async () => {
    const storage = new FaultStorage();
    const clock = new FakeClock();
    const node = await openFaultNode(storage, { segmentSizeBytes: 4096, clock });
    storage.failOn('create', 'ENOSPC', /next\.tmp/);
    const acked: number[] = [];
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      const o = await settle(alloc(node, 'a', 1));
      if ('ok' in o) acked.push(o.ok.first);
      else {
        expect(o.err).toBeInstanceOf(NoSpaceError);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(0);
    storage.clearFaults();
    clock.advance(noSpaceRetryMs);
    const after = await alloc(node, 'a', 1);
    expect(after.first).toBeGreaterThan(Math.max(...acked));
    await node.close();
    const reopened = await openFaultNode(storage.crash(), { segmentSizeBytes: 4096 });
    expect(reopened.status().namespaces).toEqual([{ name: 'a', lastId: after.first }]);
    await reopened.close();
  });

  it('once the disk is full, a record small enough for the segment remainder is refused too', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage, { segmentSizeBytes: 4096 });
    storage.failOn('create', 'ENOSPC', /next\.tmp/);
    // 100-byte records leave 60 or 96 bytes at a segment's end: room for a 47-byte 'a' record.
    const long = 'l'.repeat(54);
    for (let i = 0; i < 100; i++) {
      const o = await settle(alloc(node, long, 1));
      if ('err' in o) break;
    }
    // The refusal must not depend on the request's size: 'a' records are half as long.
    for (let i = 0; i < 20; i++)
      await expect(alloc(node, 'a', 1)).rejects.toBeInstanceOf(NoSpaceError);
    await node.close();
  });

  it('an fsync failure stops the node: pending and later requests get UNAVAILABLE, failed resolves', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage);
    await alloc(node, 'a', 1);
    storage.failOn('datasync', 'EIO', /\.wal$/);
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () => settle(alloc(node, 'a', 1))),
    );
    for (const o of outcomes) expect((o as { err: unknown }).err).toBeInstanceOf(UnavailableError);
    expect(await node.failed).toBeInstanceOf(StorageFatalError);
    await expect(alloc(node, 'a', 1)).rejects.toBeInstanceOf(UnavailableError);
    await node.close();
  });

  it('after a fatal fsync error nothing more is written or acknowledged, leftovers included', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage, { segmentSizeBytes: 8192 });
    let walWrites = 0;
    let failed = false;
    const afterFailure: string[] = [];
    storage.onOp = (op, target) => {
      if (!target.endsWith('.wal')) return;
      if (failed && (op === 'write' || op === 'datasync')) afterFailure.push(op);
      // The 400 requests are more than the segment holds: the first write takes what fits,
      // and the second (the rest, after a rollover) fails its fsync once.
      if (op === 'write' && ++walWrites === 2) storage.failOn('datasync', 'EIO', /\.wal$/, 1);
      if (op === 'datasync' && walWrites === 2) failed = true;
    };
    const outcomes = await Promise.all(
      Array.from({ length: 400 }, () => settle(alloc(node, 'a', 1))),
    );
    // Acknowledged: exactly the first batch, written before the failure (a prefix).
    const acked = outcomes.filter((o) => 'ok' in o);
    expect(acked.length).toBeGreaterThan(0);
    expect(acked.length).toBeLessThan(400);
    expect(outcomes.slice(0, acked.length)).toEqual(acked);
    for (const o of outcomes.slice(acked.length))
      expect((o as { err: unknown }).err).toBeInstanceOf(UnavailableError);
    expect(await node.failed).toBeInstanceOf(StorageFatalError);
    expect(afterFailure).toEqual([]);
    await node.close();
  });

  it('a checkpoint that finds the disk full is refused (NoSpaceError) and the node keeps serving', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage);
    await alloc(node, 'a', 1);
    storage.failOn('create', 'ENOSPC', /snapshot\.tmp/);
    await expect(node.checkpoint()).rejects.toBeInstanceOf(NoSpaceError);
    expect((await alloc(node, 'a', 1)).first).toBe(2);
    storage.clearFaults();
    expect((await node.checkpoint()).index).toBe(node.status().lastIndex);
    await node.close();
  });

  it('a checkpoint whose fsync fails stops the node', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage);
    await alloc(node, 'a', 1);
    storage.failOn('datasync', 'EIO', /snapshot\.tmp/);
    await expect(node.checkpoint()).rejects.toBeInstanceOf(StorageFatalError);
    expect(await node.failed).toBeInstanceOf(StorageFatalError);
    await expect(alloc(node, 'a', 1)).rejects.toBeInstanceOf(UnavailableError);
    await node.close();
  });

  it('a fatal checkpoint failure also stops the requests already queued from being written', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage, { segmentSizeBytes: 4096 });
    storage.failOn('datasync', 'EIO', /snapshot\.tmp/);
    let failed = false;
    let walWritesAfter = 0;
    storage.onOp = (op, target) => {
      if (op === 'datasync' && target.endsWith('snapshot.tmp')) failed = true;
      else if (failed && op === 'write' && target.endsWith('.wal')) walWritesAfter++;
    };
    // 400 queued requests need several 4 KiB-segment batches.
    const pending = Array.from({ length: 400 }, () => settle(alloc(node, 'a', 1)));
    await expect(node.checkpoint()).rejects.toBeInstanceOf(StorageFatalError);
    const outcomes = await Promise.all(pending);
    expect(walWritesAfter).toBeLessThanOrEqual(1); // at most the batch already on its way
    expect(outcomes.filter((o) => 'err' in o).length).toBeGreaterThan(300);
    await node.close();
  });

  it('keeps WAL disk use bounded under sustained load through automatic checkpoints', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage, {
      segmentSizeBytes: 16_384,
      checkpointRecords: 1_000,
    });
    let peakSegments = 0;
    for (let round = 0; round < 200; round++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => alloc(node, `ns${i % 5}`, 1)));
      peakSegments = Math.max(peakSegments, node.status().walSegments);
    }
    const status = node.status();
    expect(status.lastIndex).toBeGreaterThan(20_000);
    // 20K records are ~60 segments' worth; checkpoints every 1000 keep a handful.
    expect(peakSegments).toBeLessThanOrEqual(6);
    expect(status.checkpointIndex).toBeGreaterThan(18_000);
    await node.close();
    const reopened = await openFaultNode(storage.crash(), { segmentSizeBytes: 16_384 });
    expect(reopened.status().namespaces.map((n) => n.lastId)).toEqual([
      4000, 4000, 4000, 4000, 4000,
    ]);
    await reopened.close();
  });

  it('close() finishes queued requests before releasing the WAL, then refuses new ones', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage);
    const pending = Array.from({ length: 50 }, () => alloc(node, 'a', 1));
    const closed = node.close();
    await expect(alloc(node, 'a', 1)).rejects.toBeInstanceOf(UnavailableError);
    const results = await Promise.all(pending);
    await closed;
    expect(results.map((r) => r.first)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });
});

describe('node options', () => {
  it('refuses a segment size outside its bounds with a ConfigError', async () => {
    for (const segmentSizeBytes of [100, 2 * 1024 * 1024 * 1024]) {
      await expect(openFaultNode(new FaultStorage(), { segmentSizeBytes })).rejects.toBeInstanceOf(
        ConfigError,
      );
    }
  });

  it('takes a checkpoint when the WAL bytes since the last one pass --checkpoint-bytes', async () => {
    const storage = new FaultStorage();
    const node = await openFaultNode(storage, {
      checkpointBytes: 2000,
      checkpointRecords: 1_000_000,
    });
    for (let i = 0; i < 60; i++) await alloc(node, 'a', 1);
    // 60 records of 47 bytes are 2820 bytes: at least one checkpoint, never one per record.
    const { checkpointIndex } = node.status();
    expect(checkpointIndex).toBeGreaterThan(30);
    expect(await storage.exists('/data/snapshot')).toBe(true);
    await node.close();
  });
});

describe('node with a standby', () => {
  it('a local WAL write that fails with ENOSPC after the batch went to the standby stops the primary', async () => {
    const pair = new Pair(11);
    try {
      await pair.startStandby();
      const primary = await pair.startPrimary();
      await vi.waitFor(() => expect(primary.status().state).toBe('serving'), { timeout: 10_000 });
      const first = await alloc(primary, 'a', 1);
      pair.primaryDisk.failOn('write', 'ENOSPC', /\.wal$/, 1);
      await expect(alloc(primary, 'a', 1)).rejects.toBeInstanceOf(UnavailableError);
      expect(await primary.failed).toBeInstanceOf(StorageFatalError);
      // Space is back, but the primary never writes another record at that index in this epoch.
      await expect(alloc(primary, 'a', 1)).rejects.toBeInstanceOf(UnavailableError);
      expect(primary.status().lastIndex).toBe(first.index);
      // The standby got the batch that was never written locally: why a retry would be unsafe.
      const standby = pair.standby as CounterNode;
      await vi.waitFor(() => expect(standby.status().lastIndex).toBe(first.index + 1), {
        timeout: 10_000,
      });
    } finally {
      await pair.close();
    }
  });

  it('asserts that it never begins an epoch below the one it accepted', async () => {
    const node = await openFaultNode(new FaultStorage());
    const { epoch } = node.status();
    expect(epoch).toBeGreaterThan(0);
    // Drive it into the state directly: starting again, and handed a term older than its own.
    const inner = node as unknown as {
      stateValue: string;
      newTerm(): { beginCommitter(term: object, sender: null): Promise<void> };
    };
    inner.stateValue = 'starting';
    const older = { epoch: epoch - 1, nonce: 'n', persisted: true, skipAhead: 0 };
    expect(() => inner.newTerm().beginCommitter(older, null)).toThrow(AssertionFailure);
    expect(() => inner.newTerm().beginCommitter(older, null)).toThrow(
      `node: beginning epoch ${epoch - 1} after accepting epoch ${epoch}`,
    );
    await node.close();
  });
});
