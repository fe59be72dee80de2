import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { AssertionFailure } from '../core/assert';
import { NoSpaceError, StorageFatalError, UnavailableError, type TallyError } from '../core/errors';
import { createMetrics } from '../core/metrics';
import type { Batch } from '../replication/sender';
import { CounterState } from '../state/counters';
import { FakeClock } from '../testing/fake-clock';
import { FaultStorage } from '../testing/fault-storage';
import { segmentName } from '../wal/segment-files';
import { Wal } from '../wal/wal';
import { Committer, type Replicator } from './committer';
import type { AllocateResult } from './types';

const logger = pino({ level: 'silent' });
const walDir = '/d/wal';
const segment = `${walDir}/${segmentName(1)}`;

/** A standby that acknowledges whatever it was offered, recording each offer. */
class FakeReplicator implements Replicator {
  offers: Batch[] = [];
  onOffer: (batch: Batch) => void = () => undefined;

  offer(batch: Batch): void {
    this.offers.push(batch);
    this.onOffer(batch);
  }

  localDurable(): void {}

  get ackedIndex(): number {
    const last = this.offers[this.offers.length - 1];
    return last === undefined ? 0 : last.firstIndex + last.count - 1;
  }
}

/** A standby whose ack the test sets. */
class ManualReplicator implements Replicator {
  ackedIndex = 0;
  offered = 0;

  offer(batch: Batch): void {
    this.offered = batch.firstIndex + batch.count - 1;
  }

  localDurable(): void {}
}

async function committerOn(storage: FaultStorage, replicator?: Replicator) {
  await storage.mkdir('/d');
  const { wal } = await Wal.open(
    { storage, dir: walDir, segmentSizeBytes: 8192, logger, clock: new FakeClock() },
    0,
    () => undefined,
  );
  const fatal: TallyError[] = [];
  const committer = new Committer({
    wal,
    state: new CounterState(),
    clock: new FakeClock(),
    logger,
    metrics: createMetrics({ defaults: false }),
    queuedRequestsMax: 1000,
    batchBytesMax: 4096,
    epoch: 1,
    onBatchDurable: () => undefined,
    onFatal: (err) => fatal.push(err),
    replicator,
  });
  const alloc = (namespace: string, count: number) =>
    new Promise<AllocateResult>((resolve, reject) =>
      committer.submit(namespace, count, undefined, (err, res) =>
        err ? reject(err) : resolve(res as AllocateResult),
      ),
    );
  return {
    wal,
    committer,
    fatal,
    alloc,
    state: (committer as unknown as { opts: { state: CounterState } }).opts.state,
  };
}

describe('committer', () => {
  it('hands each batch to the replicator before its local write, and acknowledges once it is durable', async () => {
    const storage = new FaultStorage();
    const replicator = new FakeReplicator();
    const { wal, alloc } = await committerOn(storage, replicator);
    const ops: string[] = [];
    replicator.onOffer = (batch) => {
      ops.push(`offer ${batch.firstIndex}`);
      // None of the batch's bytes are in the segment yet.
      expect(storage.contents(segment).indexOf(batch.bytes)).toBe(-1);
    };
    // 5 requests in one tick share the first batch; 15 more that arrive while it is being
    // written share the second.
    const later: Array<Promise<AllocateResult>> = [];
    const first = Array.from({ length: 5 }, () => alloc('a', 1));
    storage.onOp = (op, target) => {
      if (target !== segment) return;
      ops.push(op);
      if (op === 'write' && later.length === 0)
        for (let i = 0; i < 15; i++) later.push(alloc('a', 1));
    };
    const results = await Promise.all(first);
    results.push(...(await Promise.all(later)));
    expect(results.map((r) => r.first)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(ops).toEqual(['offer 1', 'write', 'datasync', 'offer 6', 'write', 'datasync']);
    await wal.close();
  });

  it('a local write that fails with ENOSPC after the offer stops it for good (UNAVAILABLE, onFatal)', async () => {
    const storage = new FaultStorage();
    const replicator = new FakeReplicator();
    const { wal, fatal, alloc } = await committerOn(storage, replicator);
    expect((await alloc('a', 1)).first).toBe(1);
    storage.failOn('write', 'ENOSPC', /\.wal$/, 1);
    const err = await alloc('a', 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).cause).toBeInstanceOf(StorageFatalError);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toBeInstanceOf(StorageFatalError);
    // The standby may hold index 2: nothing else is ever written at it in this epoch.
    expect(replicator.offers.map((b) => b.firstIndex)).toEqual([1, 2]);
    await expect(alloc('a', 1)).rejects.toBeInstanceOf(UnavailableError);
    expect(replicator.offers).toHaveLength(2);
    expect(wal.nextIndex).toBe(2);
    await wal.close();
  });

  it('standalone, a local write that fails with ENOSPC is refused with NoSpaceError and the next batch is written', async () => {
    const storage = new FaultStorage();
    const { wal, fatal, alloc } = await committerOn(storage);
    expect((await alloc('a', 1)).first).toBe(1);
    storage.failOn('write', 'ENOSPC', /\.wal$/, 1);
    await expect(alloc('a', 1)).rejects.toBeInstanceOf(NoSpaceError);
    expect((await alloc('a', 1)).first).toBe(3); // the refused reservation is skipped, not reissued
    expect(fatal).toEqual([]);
    expect(wal.nextIndex).toBe(3);
    await wal.close();
  });

  describe('assertions at the moment of acknowledgement', () => {
    /** A request written locally and waiting for the standby's ack. */
    async function waitingForAck() {
      const storage = new FaultStorage();
      const replicator = new ManualReplicator();
      const c = await committerOn(storage, replicator);
      const answer = c.alloc('ids', 3).catch((e: unknown) => e);
      await vi.waitFor(() => expect(c.wal.nextIndex).toBe(2)); // written locally, not acked
      return { ...c, replicator, answer };
    }

    it('IDs already acknowledged in the namespace are never acknowledged again', async () => {
      const { committer, replicator, state, wal } = await waitingForAck();
      state.apply('ids', 1, 5); // as if a bug had acknowledged 1..5 meanwhile
      replicator.ackedIndex = 1;
      let thrown: unknown;
      try {
        committer.onAck();
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(AssertionFailure);
      expect((thrown as Error).message).toMatch(/acknowledged IDs are new/);
      committer.halt(new UnavailableError('test: over')); // stops its expiry sweep
      await wal.close();
    });

    it('the standby ack only moves forward', async () => {
      const { committer, replicator, wal } = await waitingForAck();
      replicator.ackedIndex = 1;
      committer.onAck();
      replicator.ackedIndex = 0;
      expect(() => committer.onAck()).toThrow(/the standby ack only moves forward/);
      committer.halt(new UnavailableError('test: over')); // stops its expiry sweep
      await wal.close();
    });

    it('batches are acknowledged in log order, none skipped', async () => {
      const { committer, replicator, wal } = await waitingForAck();
      // As if a batch after index 1 had been acknowledged already.
      (committer as unknown as { acknowledged: number }).acknowledged = 7;
      replicator.ackedIndex = 1;
      expect(() => committer.onAck()).toThrow(/batch 1 acknowledged after 7/);
      committer.halt(new UnavailableError('test: over')); // stops its expiry sweep
      await wal.close();
    });
  });
});
