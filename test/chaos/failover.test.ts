/**
 * Self-healing under load, with real processes: a controller and two nodes, concurrent
 * allocations through the client library (TallyClient given both addresses), and cycles of
 * SIGKILL of the primary (→ promotion), restart (→ rejoin, back in sync), SIGKILL of the
 * standby (→ approved degrade), restart (→ back in sync); then both die, the standby first,
 * and the out-of-sync standby must not be promoted. Every operation goes into a
 * History; the checker requires unique IDs and real-time order, and the surviving primary's
 * counters must cover every acknowledged ID.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TallyClient } from '../../src/client';
import {
  closeControllerClients,
  kill,
  startCluster,
  type Cluster,
  dumpMembersOnFailure,
} from '../integration/cluster-process';
import {
  assertBuilt,
  killChildren,
  nodeStatus,
  removeTempDirs,
  until,
} from '../integration/serve-process';
import { History } from './history';
import { clientWorker, lastIds, prng, progress } from './load';

const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
const cycles = 3;

beforeAll(assertBuilt);
afterEach(async (ctx) => {
  dumpMembersOnFailure(ctx.task.result?.state === 'fail');
  closeControllerClients();
  await killChildren();
});
afterAll(removeTempDirs);

async function inSyncBoth(cl: Cluster): Promise<void> {
  await until(
    'both nodes in sync',
    async () => {
      const c = await cl.config();
      return c.inSync.length === 2 && !c.promoting ? true : null;
    },
    60_000,
  );
}

describe(`failover chaos (seed ${seed})`, () => {
  it(`${cycles} cycles of SIGKILL primary / restart / SIGKILL standby / restart, then both down standby first (no promotion of the stale standby), under client-library load: no duplicate, real-time order holds, nothing acknowledged lost`, async () => {
    const cl = await startCluster();
    const client = new TallyClient({ addresses: [cl.nodes.a.address, cl.nodes.b.address] });
    const history = new History();
    const load = clientWorker(client, history, prng(seed), 16);
    try {
      await progress(history, 200, 'load flowing');
      for (let cycle = 0; cycle < cycles; cycle++) {
        await inSyncBoth(cl);
        const primary = (await cl.config()).primary.id as 'a' | 'b';
        const standby = primary === 'a' ? 'b' : 'a';
        await kill(cl.nodes[primary].child, 'SIGKILL');
        await progress(history, 200, `allocations after killing primary ${primary}`);
        expect((await cl.config()).primary.id).toBe(standby);
        cl.startNode(primary);
        await inSyncBoth(cl);
        await progress(history, 100, 'allocations with the old primary back as standby');
        // Now the standby (the node just restarted) dies: the primary degrades and goes on.
        await kill(cl.nodes[primary].child, 'SIGKILL');
        await progress(history, 200, `allocations after killing standby ${primary}`);
        expect((await cl.config()).inSync).toEqual([standby]);
        cl.startNode(primary);
      }
      // Both die, the standby first: the primary had acknowledged alone, so the standby
      // (restarted first, holding less) must never be promoted; the cluster waits for the
      // primary, which comes back as primary and catches the standby up.
      await inSyncBoth(cl);
      const { primary: p, standby: sb } = await cl.config();
      const [primary, standby] = [p.id as 'a' | 'b', sb.id as 'a' | 'b'];
      await kill(cl.nodes[standby].child, 'SIGKILL');
      await progress(history, 200, 'allocations acknowledged alone');
      await kill(cl.nodes[primary].child, 'SIGKILL');
      cl.startNode(standby);
      await until('the standby restarted', async () =>
        (await nodeStatus(cl.nodes[standby].address)).state === 'serving' ? true : null,
      );
      await new Promise((r) => setTimeout(r, 1500)); // three failover timeouts
      expect((await cl.config()).primary.id).toBe(primary);
      cl.startNode(primary);
      await inSyncBoth(cl);
      await progress(history, 100, 'final allocations');
    } finally {
      await load.stop();
      client.close();
    }
    const violations = history.violations();
    expect(violations.slice(0, 10)).toEqual([]);
    // Never backwards: the current primary's counters cover every acknowledged ID.
    const primaryAddress = cl.nodes[(await cl.config()).primary.id as 'a' | 'b'].address;
    expect((await nodeStatus(primaryAddress)).role).toBe('primary');
    const counters = await lastIds(primaryAddress);
    for (const [ns, highest] of history.highestAcked()) {
      expect(counters.get(ns) ?? 0, ns).toBeGreaterThanOrEqual(highest);
    }
    expect(history.acked().length).toBeGreaterThan(1000);
  });
});
