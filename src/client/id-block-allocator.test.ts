import { describe, expect, it } from 'vitest';
import { blockSizeMax, blockWaitersMax } from '../core/limits';
import { FakeClock } from '../testing/fake-clock';
import { ClientClosedError, ClientOverloadedError } from './errors';
import { type BlockSource, IdBlockAllocator, refillFraction } from './id-block-allocator';
import type { Allocation } from './tally-client';

interface Call {
  count: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A block source answered by the test: each allocate() waits until grant() or refuse(). */
class FakeSource implements BlockSource {
  readonly calls: Call[] = [];
  readonly waiting: Call[] = [];
  private nextId = 1;

  allocate(_namespace: string, count: number): Promise<Allocation> {
    return new Promise<Allocation>((resolve, reject) => {
      const call: Call = {
        count,
        resolve: () => {
          const first = this.nextId;
          this.nextId += count;
          resolve({ first, count, epoch: 1, index: this.calls.indexOf(call) + 1 });
        },
        reject,
      };
      this.calls.push(call);
      this.waiting.push(call);
    });
  }

  /** Answers the oldest waiting allocate() and lets its callbacks run. */
  async grant(): Promise<void> {
    const call = this.waiting.shift();
    if (call === undefined) throw new Error('test: no allocate() is waiting');
    call.resolve();
    await settle();
  }

  async refuse(err: Error): Promise<void> {
    const call = this.waiting.shift();
    if (call === undefined) throw new Error('test: no allocate() is waiting');
    call.reject(err);
    await settle();
  }

  get counts(): number[] {
    return this.calls.map((c) => c.count);
  }
}

/** Lets every promise job queued so far (and those they queue) run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function takeAll(alloc: IdBlockAllocator, n: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = alloc.tryNext();
    if (id === undefined) throw new Error(`test: memory ran dry after ${i} IDs`);
    ids.push(id);
  }
  return ids;
}

const range = (first: number, n: number): number[] =>
  Array.from({ length: n }, (_, i) => first + i);

describe('IdBlockAllocator', () => {
  it('the first next() waits for one block; later IDs come from memory with no request until the refill threshold', async () => {
    const source = new FakeSource();
    const alloc = new IdBlockAllocator(source, 'ns', { blockSizeMin: 10, blockSizeMax: 100 });
    const first = alloc.next();
    expect(source.counts).toEqual([10]);
    expect(alloc.tryNext()).toBeUndefined(); // nothing in memory, and first() waits ahead
    await source.grant();
    expect(await first).toBe(1);

    // 9 left; the prefetch starts once fewer than 10 * refillFraction = 5 are left.
    expect(refillFraction).toBe(0.5);
    expect(takeAll(alloc, 4)).toEqual([2, 3, 4, 5]);
    expect(source.calls).toHaveLength(1);
    expect(takeAll(alloc, 1)).toEqual([6]);
    expect(source.calls).toHaveLength(2); // 4 left: the spare is on its way
    expect(takeAll(alloc, 3)).toEqual([7, 8, 9]);
    expect(source.calls).toHaveLength(2); // one refill in flight at a time
    expect(alloc.available).toBe(1);
  });

  it('double buffer: the spare arrives before the current block runs out, so 2000 takes never wait and stay consecutive', async () => {
    const source = new FakeSource();
    const alloc = new IdBlockAllocator(source, 'ns', { blockSizeMin: 8, blockSizeMax: 64 });
    const ids = [await Promise.all([alloc.next(), source.grant()]).then(([id]) => id)];
    for (let i = 1; i < 2000; i++) {
      const id = alloc.tryNext();
      expect(id, `take ${i}`).toBeDefined();
      ids.push(id as number);
      // The node answers each refill as soon as it is asked: the spare is ready in time.
      if (source.waiting.length > 0) await source.grant();
    }
    expect(ids).toEqual(range(1, 2000));
    expect(source.calls.length).toBeGreaterThan(2000 / 64);
  });

  it('block size follows the rate: a block lasts about blockTargetMs, clamped to [blockSizeMin, blockSizeMax]', async () => {
    const clock = new FakeClock();
    const source = new FakeSource();
    const alloc = new IdBlockAllocator(source, 'ns', { blockSizeMin: 16, clock });
    expect(alloc.blockSize).toBe(16);
    const consume = async (n: number, msPerId: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        clock.advance(msPerId);
        const id = alloc.tryNext() ?? (await Promise.all([alloc.next(), source.grant()]))[0];
        expect(id).toBeGreaterThan(0);
        if (source.waiting.length > 0) await source.grant();
      }
    };
    // 50 IDs per ms = 50 000 per 1 s target: the largest block.
    await consume(60_000, 0.02);
    expect(alloc.blockSize).toBe(blockSizeMax);
    expect(source.counts.at(-1)).toBe(blockSizeMax);
    // 2 IDs per ms: about 2000 per block (the smoothed rate takes a few refills to come down).
    await consume(80_000, 0.5);
    expect(alloc.blockSize).toBeGreaterThan(1500);
    expect(alloc.blockSize).toBeLessThan(2500);
    // One ID every 200 ms = 5 per second: the smallest block, once the big blocks are used up
    // (the size changes at refills; IDs already in memory are handed out first).
    await consume(6000, 200);
    expect(alloc.blockSize).toBe(16);
    expect(source.counts.at(-1)).toBe(16);
  });

  it('callers waiting for a refill are served in call order with increasing IDs, over as many refills as they need', async () => {
    const source = new FakeSource();
    const alloc = new IdBlockAllocator(source, 'ns', { blockSizeMin: 2, blockSizeMax: 3 });
    const served: [number, number][] = [];
    const calls = range(0, 7).map((caller) =>
      alloc.next().then((id) => void served.push([caller, id])),
    );
    expect(source.counts).toEqual([2]); // asked before the other six joined
    await source.grant();
    expect(source.counts).toEqual([2, 3]); // for the waiters left: at least one ID each, capped
    await source.grant();
    await source.grant();
    await Promise.all(calls);
    expect(served).toEqual(range(0, 7).map((caller) => [caller, caller + 1]));
    // The refills kept going until every waiter was served; the one ID left in memory is below
    // the refill threshold, so the spare is already asked for.
    expect(source.counts).toEqual([2, 3, 3, 3]);
    expect(alloc.tryNext()).toBe(8);
  });

  it('a failed refill rejects every waiter with its error, in order; the next call refills again', async () => {
    const source = new FakeSource();
    const alloc = new IdBlockAllocator(source, 'ns');
    const rejected: [number, unknown][] = [];
    const waiters = range(0, 3).map((i) =>
      alloc.next().then(
        () => expect.unreachable(),
        (err: unknown) => void rejected.push([i, err]),
      ),
    );
    const boom = new Error('test: node down');
    await source.refuse(boom);
    await Promise.all(waiters);
    expect(rejected).toEqual([
      [0, boom],
      [1, boom],
      [2, boom],
    ]);
    expect(source.calls).toHaveLength(1); // nothing retried behind the callers' backs

    const again = alloc.next();
    expect(source.calls).toHaveLength(2);
    await source.grant();
    expect(await again).toBe(1);
  });

  it('a failed background prefetch rejects nobody and is not retried on every take; it is retried when the block runs out', async () => {
    const source = new FakeSource();
    const alloc = new IdBlockAllocator(source, 'ns', { blockSizeMin: 10, blockSizeMax: 10 });
    await Promise.all([alloc.next(), source.grant()]);
    takeAll(alloc, 5); // 4 left: the prefetch is asked for
    expect(source.calls).toHaveLength(2);
    await source.refuse(new Error('test: prefetch failed'));
    expect(takeAll(alloc, 4)).toEqual([7, 8, 9, 10]);
    expect(source.calls).toHaveLength(2);
    // Memory is empty now: next() asks again.
    const id = alloc.next();
    expect(source.calls).toHaveLength(3);
    await source.grant();
    expect(await id).toBe(11);
  });

  it('close() rejects the waiters, discards the blocks in memory and a block that arrives later; next() is refused', async () => {
    const source = new FakeSource();
    const alloc = new IdBlockAllocator(source, 'ns', { blockSizeMin: 10 });
    await Promise.all([alloc.next(), source.grant()]);
    takeAll(alloc, 6); // prefetch in flight
    expect(source.waiting).toHaveLength(1);
    alloc.close();
    expect(alloc.available).toBe(0);
    expect(alloc.tryNext()).toBeUndefined();
    await source.grant(); // the prefetched block arrives after close: discarded
    expect(alloc.available).toBe(0);
    await expect(alloc.next()).rejects.toBeInstanceOf(ClientClosedError);

    const waiting = new IdBlockAllocator(source, 'ns');
    const pending = waiting.next();
    waiting.close();
    await expect(pending).rejects.toBeInstanceOf(ClientClosedError);
  });

  it(`refuses a caller beyond blockWaitersMax (${blockWaitersMax}) waiters with ClientOverloadedError`, async () => {
    const source = new FakeSource();
    const alloc = new IdBlockAllocator(source, 'ns');
    const waiters = range(0, blockWaitersMax).map(() => alloc.next());
    await expect(alloc.next()).rejects.toBeInstanceOf(ClientOverloadedError);
    alloc.close();
    await Promise.allSettled(waiters);
  });

  it('refuses block sizes outside 1..blockSizeMax or out of order', () => {
    const source = new FakeSource();
    const bad = [
      { blockSizeMin: 0 },
      { blockSizeMin: 20, blockSizeMax: 10 },
      { blockSizeMax: blockSizeMax + 1 },
      { blockSizeMin: 10, blockSizeInitial: 5 },
      { blockSizeMin: 1.5 },
      { blockTargetMs: 0 },
    ];
    for (const opts of bad) {
      expect(() => new IdBlockAllocator(source, 'ns', opts), JSON.stringify(opts)).toThrow(
        /^client: block sizes/,
      );
    }
  });
});
