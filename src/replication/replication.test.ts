import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AllocateResult, CounterNode } from '../node/types';
import { alloc } from '../testing/node-harness';
import { Pair, recordKey, walRecords } from '../testing/replication-harness';

const pairs: Pair[] = [];
afterEach(async () => {
  for (const pair of pairs.splice(0)) await pair.close();
});

async function serving(node: CounterNode): Promise<void> {
  await vi.waitFor(() => expect(node.status().state).toBe('serving'), { timeout: 20_000 });
}

function settle(p: Promise<AllocateResult>): Promise<AllocateResult | Error> {
  return p.catch((err: unknown) => err as Error);
}

/**
 * Allocates `n` times with up to `concurrency` in flight and checks, inside each ack, that the
 * standby already holds that record: an acknowledgement never precedes the standby's fsync.
 */
async function load(pair: Pair, n: number, concurrency: number): Promise<AllocateResult[]> {
  const acked: AllocateResult[] = [];
  const violations: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const primary = pair.primary as CounterNode;
      const r = await settle(
        new Promise<AllocateResult>((resolve, reject) =>
          primary.allocate('ids', 1 + (next % 3), Date.now() + 3000, (err, res) => {
            if (err) return reject(err);
            const standby = pair.standby?.status();
            if (!standby || standby.lastIndex < (res as AllocateResult).index) {
              violations.push(`ack of index ${res?.index} before the standby had it`);
            }
            resolve(res as AllocateResult);
          }),
        ),
      );
      if (!(r instanceof Error)) acked.push(r);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  expect(violations).toEqual([]);
  return acked;
}

function expectUnique(acked: AllocateResult[]): void {
  const ids = new Set<number>();
  for (const r of acked) for (let id = r.first; id < r.first + r.count; id++) ids.add(id);
  expect(ids.size).toBe(acked.reduce((sum, r) => sum + r.count, 0));
}

/** The standby's log holds the primary's records, identically, up to the primary's end. */
async function expectConverged(pair: Pair): Promise<void> {
  const primary = pair.primary as CounterNode;
  await vi.waitFor(
    () => expect((pair.standby as CounterNode).status().lastIndex).toBe(primary.status().lastIndex),
    { timeout: 20_000 },
  );
  await pair.close();
  const mine = (await walRecords(pair.primaryDisk)).map(recordKey);
  const theirs = (await walRecords(pair.standbyDisk)).map(recordKey);
  expect(theirs).toEqual(mine);
}

describe('replication over a misbehaving network', () => {
  const plans = [
    { name: 'clean', plan: {} },
    { name: 'delays and reordering', plan: { delayMsMax: 3, reorderRate: 0.05 } },
    { name: 'duplicates', plan: { duplicateRate: 0.2, delayMsMax: 1 } },
    { name: 'drops', plan: { dropRate: 0.03, delayMsMax: 1 } },
    {
      name: 'drops, duplicates, reordering and delays',
      plan: { dropRate: 0.02, duplicateRate: 0.1, reorderRate: 0.05, delayMsMax: 2 },
    },
  ];
  for (const [i, { name, plan }] of plans.entries()) {
    it(`${name}: acks only what the standby has fsynced, no ID twice, logs converge`, async () => {
      const pair = new Pair(1000 + i, plan);
      pairs.push(pair);
      await pair.startStandby();
      await serving(await pair.startPrimary());
      const acked = await load(pair, 400, 16);
      expect(acked.length).toBeGreaterThan(0);
      expectUnique(acked);
      pair.net.heal();
      // One more ack after healing: everything before it is on the standby too.
      await alloc(pair.primary as CounterNode, 'ids', 1);
      await expectConverged(pair);
    });
  }
});
