/**
 * The client library (src/client/) against real `tally serve` processes (dist/) on 127.0.0.1:
 * pipelined allocations, finding the primary through a standby's hint, a failover (primary
 * SIGKILLed, standby promoted with `tally promote`) under load, a refused request that is not
 * retried, a deadline shorter than an outage, and block allocators on a real node.
 */
import path from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClientDeadlineExceededError, ClientRequestError } from '../../src/client/errors';
import { IdBlockAllocator } from '../../src/client/id-block-allocator';
import { type Allocation, TallyClient } from '../../src/client/tally-client';
import {
  assertBuilt,
  fetchText,
  killChildren,
  lastIdOf,
  nodeStatus,
  promote,
  removeTempDirs,
  type Server,
  startPair,
  startServe,
  stop,
  tempDir,
  until,
} from './serve-process';

const clients: TallyClient[] = [];

function client(addresses: string[], deadlineMs?: number): TallyClient {
  const c = new TallyClient({ addresses, deadlineMs });
  clients.push(c);
  return c;
}

beforeAll(() => assertBuilt());
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await killChildren();
});
afterAll(async () => {
  await killChildren();
  await removeTempDirs();
});

async function startStandalone(): Promise<Server> {
  return startServe(path.join(await tempDir('tally-client-'), 'data'));
}

/** tally_requests_total{method, code} from a node's /metrics (0 when absent). */
async function requestsTotal(node: Server, method: string, code: string): Promise<number> {
  const { body } = await fetchText(`http://127.0.0.1:${node.metricsPort}/metrics`);
  const line = body
    .split('\n')
    .find((l) => l.startsWith(`tally_requests_total{method="${method}",code="${code}"} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

/** Every ID of every allocation; fails the test on the first ID seen twice. */
function allIds(allocations: Allocation[]): number[] {
  const seen = new Set<number>();
  for (const a of allocations) {
    for (let id = a.first; id < a.first + a.count; id++) {
      if (seen.has(id)) expect.fail(`ID ${id} was acknowledged twice`);
      seen.add(id);
    }
  }
  return [...seen];
}

describe('TallyClient on a real node', () => {
  it('pipelines 3000 concurrent allocations on one AllocateStream: every ID unique, none skipped', async () => {
    const node = await startStandalone();
    const c = client([node.target]);
    const counts = Array.from({ length: 3000 }, (_, i) => (i % 4) + 1);
    const results = await Promise.all(counts.map((n) => c.allocate('pipe', n)));
    expect(results.map((r) => r.count)).toEqual(counts);
    const ids = allIds(results);
    const total = counts.reduce((a, b) => a + b);
    expect(ids).toHaveLength(total);
    // Nothing failed or was retried, so there is no gap either: 1..total exactly.
    expect(Math.min(...ids)).toBe(1);
    expect(await lastIdOf(node.target, 'pipe')).toBe(total);
    expect(await requestsTotal(node, 'AllocateStream', 'OK')).toBe(3000);
    expect(await requestsTotal(node, 'Allocate', 'OK')).toBe(0);
  });

  it('INVALID_ARGUMENT from the node rejects at once with ClientRequestError and is sent exactly once', async () => {
    const node = await startStandalone();
    const c = client([node.target]);
    const err = await c.allocate('Not A Namespace!', 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientRequestError);
    expect(err).toMatchObject({ code: Status.INVALID_ARGUMENT });
    expect((err as Error).message).toMatch(
      /^client: allocate 1 in "Not A Namespace!" failed: INVALID_ARGUMENT: /,
    );
    expect(await requestsTotal(node, 'AllocateStream', 'INVALID_ARGUMENT')).toBe(1);
    // The stream is still good for the next call.
    expect(await c.allocate('fine', 2)).toMatchObject({ first: 1, count: 2 });
  });

  it('two IdBlockAllocators on one client hand out distinct IDs, each increasing in its own order', async () => {
    const node = await startStandalone();
    const c = client([node.target]);
    const allocators = [new IdBlockAllocator(c, 'blocks'), new IdBlockAllocator(c, 'blocks')];
    const taken = await Promise.all(
      allocators.map(async (alloc) => {
        const ids: number[] = [];
        for (let i = 0; i < 5000; i++) ids.push(await alloc.next());
        alloc.close();
        return ids;
      }),
    );
    for (const ids of taken) {
      for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1] as number);
    }
    expect(new Set(taken.flat()).size).toBe(10_000);
    // Blocks, not one request per ID.
    expect(await requestsTotal(node, 'AllocateStream', 'OK')).toBeLessThan(1000);
  });
});

describe('TallyClient finds the primary', () => {
  it("given [standby, primary], or the standby alone, it follows the standby's FAILED_PRECONDITION hint", async () => {
    const pair = await startPair();
    const both = client([pair.standby.target, pair.primary.target]);
    const a = await both.allocate('hint', 3);
    expect(both.target).toBe(pair.primary.target);
    const standbyOnly = client([pair.standby.target]);
    const b = await standbyOnly.allocate('hint', 2);
    expect(standbyOnly.target).toBe(pair.primary.target);

    expect(allIds([a, b])).toHaveLength(5);
    expect(await lastIdOf(pair.primary.target, 'hint')).toBe(5);
    // Each client asked the standby once and was sent on.
    expect(await requestsTotal(pair.standby, 'AllocateStream', 'FAILED_PRECONDITION')).toBe(2);
    expect(await requestsTotal(pair.primary, 'AllocateStream', 'OK')).toBe(2);
  });
});

interface Completed extends Allocation {
  worker: number;
  /** The highest ID acknowledged to anyone before this call was made. */
  floor: number;
}

describe('TallyClient across a failover', () => {
  it('primary SIGKILLed, standby promoted while 4 callers keep allocating: they go on in the new epoch, no ID repeats, later calls get higher IDs', async () => {
    const pair = await startPair();
    const c = client([pair.primary.target, pair.standby.target], 60_000);
    const history: Completed[] = [];
    let highestAcked = 0;
    let running = true;
    const workers = Promise.all(
      [0, 1, 2, 3].map(async (worker) => {
        for (let n = 0; running; n++) {
          const floor = highestAcked;
          const a = await c.allocate('failover', 1 + ((n + worker) % 3));
          highestAcked = Math.max(highestAcked, a.first + a.count - 1);
          history.push({ ...a, worker, floor });
        }
      }),
    );
    /** Waits for cond, or fails at once if a worker failed. */
    const whenever = (what: string, cond: () => boolean): Promise<unknown> =>
      Promise.race([until(what, () => Promise.resolve(cond() ? true : null)), workers]);

    await whenever('200 allocations before the kill', () => history.length >= 200);
    const oldEpoch = Number((await nodeStatus(pair.standby.target)).epoch);
    await stop(pair.primary);
    const doneAtKill = history.length;
    const run = await promote(pair.standby.target, String(oldEpoch + 1));
    expect(run.code, run.stderr).toBe(0);
    await whenever('200 allocations in the new epoch', () => {
      return history.filter((h) => h.epoch > oldEpoch).length >= 200;
    });
    running = false;
    await workers;

    expect(c.target).toBe(pair.standby.target);
    allIds(history);
    for (const h of history) {
      // Invariant 3 as the callers see it: a call made after another one completed got higher IDs.
      expect(
        h.first,
        `allocation ${h.first} made after ${h.floor} was acknowledged`,
      ).toBeGreaterThan(h.floor);
    }
    for (const worker of [0, 1, 2, 3]) {
      const mine = history.filter((h) => h.worker === worker);
      for (let i = 1; i < mine.length; i++) {
        expect(mine[i]?.first).toBeGreaterThan((mine[i - 1] as Completed).first);
      }
    }
    const epochs = new Set(history.map((h) => h.epoch));
    expect([...epochs].sort()).toEqual([oldEpoch, oldEpoch + 1]);
    const oldHighest = Math.max(...history.filter((h) => h.epoch === oldEpoch).map((h) => h.first));
    const newLowest = Math.min(...history.filter((h) => h.epoch > oldEpoch).map((h) => h.first));
    expect(newLowest).toBeGreaterThan(oldHighest);
    expect(history.length).toBeGreaterThan(doneAtKill);
  });

  it('a deadline shorter than the outage rejects with DEADLINE_EXCEEDED (last status UNAVAILABLE or FAILED_PRECONDITION); after the promotion the same client allocates again', async () => {
    const pair = await startPair();
    const c = client([pair.primary.target, pair.standby.target]);
    const before = await c.allocate('outage', 1);
    const oldEpoch = Number((await nodeStatus(pair.standby.target)).epoch);
    await stop(pair.primary);

    const err = await c.allocate('outage', 1, { deadlineMs: 1500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientDeadlineExceededError);
    const deadline = err as ClientDeadlineExceededError;
    expect(deadline.code).toBe(Status.DEADLINE_EXCEEDED);
    expect([Status.UNAVAILABLE, Status.FAILED_PRECONDITION]).toContain(deadline.lastStatus?.code);
    expect(deadline.attempts).toBeGreaterThan(1);

    const run = await promote(pair.standby.target, String(oldEpoch + 1));
    expect(run.code, run.stderr).toBe(0);
    const after = await c.allocate('outage', 1);
    expect(after.epoch).toBe(oldEpoch + 1);
    expect(after.first).toBeGreaterThan(before.first);
  });
});
