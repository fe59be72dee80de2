/**
 * How the controller tells a crash from silence, with real processes under client-library
 * load (a controller and two nodes on 127.0.0.1):
 *   1. SIGKILL of the primary: its port refuses connections and the standby's stream from it
 *      is reset — the controller fails over on that evidence, not on the timeout (set to 10 s
 *      here, so the reason recorded says which path was taken).
 *   2. A primary whose whole process stalls for 200 ms (SIGSTOP … SIGCONT: a GC pause, a slow
 *      fsync) three times over: never failed over (the timeout for silence is 500 ms).
 *   3. A primary paused past the timeout: its kernel still accepts connections, so this is
 *      silence — failed over by the timeout; resumed, it acknowledges nothing more and rejoins.
 *   4. A client that starts just then is sent to the paused primary by the standby's hint: the
 *      connection never comes up (the handshake is never answered); the client gives it up and
 *      finds the promoted node instead of waiting out its deadline.
 * Outcomes only (the reason recorded, the configuration, the history), no timings. Every
 * history: no duplicate, real-time order kept.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TallyClient } from '../../src/client';
import {
  cleanUpClusterTest,
  kill,
  startCluster,
  untilIn,
  untilInSync,
  type Cluster,
} from '../integration/cluster-process';
import { assertBuilt, sleep } from '../integration/serve-process';
import { History } from './history';
import { clientWorker, prng, progress } from './load';

beforeAll(assertBuilt);
afterEach((ctx) => cleanUpClusterTest(ctx.task.result?.state === 'fail'));

/** Runs `faults` under client-library load, then checks the history. */
async function underLoad(cl: Cluster, faults: (history: History) => Promise<void>) {
  const client = new TallyClient({ addresses: [cl.nodes.a.address, cl.nodes.b.address] });
  const history = new History();
  const load = clientWorker(client, history, prng(Date.now() % 1_000_000), 16, 1);
  try {
    await progress(history, 200, 'load flowing');
    await faults(history);
  } finally {
    await load.stop();
    client.close();
  }
  expect(history.violations().slice(0, 10)).toEqual([]);
}

function promotedAwayFrom(cl: Cluster, id: 'a' | 'b') {
  return untilIn(cl, `a primary other than ${id} serving`, async () => {
    const c = await cl.config();
    return c.primary.id !== id && !c.promoting ? c : null;
  });
}

describe('failover: a crash is evidence, silence needs the timeout', () => {
  it('SIGKILL of the primary: failed over because its port refuses connections and the standby saw its stream reset, not by the (10 s) timeout; no ID twice', async () => {
    const cl = await startCluster(
      undefined,
      {},
      {
        controllerArgs: { '--failover-timeout-ms': '10000' },
      },
    );
    await untilInSync(cl);
    await underLoad(cl, async (history) => {
      await kill(cl.nodes.a.child, 'SIGKILL');
      const c = await promotedAwayFrom(cl, 'a');
      expect(c.lastFailover?.reason).toBe(
        "primary a refused connections (nothing listens on its port) and b's replication stream from it was reset",
      );
      await progress(history, 200, 'allocations on b');
    });
  });

  it('a primary whose process stalls for 200 ms (SIGSTOP, SIGCONT), three times under load, is never failed over', async () => {
    const cl = await startCluster();
    await untilInSync(cl);
    const before = await cl.config();
    await underLoad(cl, async (history) => {
      for (let i = 0; i < 3; i++) {
        await kill(cl.nodes.a.child, 'SIGSTOP');
        await sleep(200); // 300 ms left a CI run (2 cores, under load) 531 ms of silence: 500 ms is the timeout
        await kill(cl.nodes.a.child, 'SIGCONT');
        await progress(history, 100, `allocations after stall ${i + 1}`);
        await sleep(700);
      }
      await sleep(1000); // two failover timeouts more
    });
    const after = await cl.config();
    expect(after.primary.id).toBe('a');
    expect(after.epoch).toBe(before.epoch);
    expect(after.lastFailover).toEqual(before.lastFailover);
    expect(after.inSync).toEqual(before.inSync);
  });

  it('a primary paused past the timeout (its port still accepts) is failed over as silence, by the timeout; resumed, it rejoins as standby', async () => {
    const cl = await startCluster();
    await untilInSync(cl);
    await underLoad(cl, async (history) => {
      await kill(cl.nodes.a.child, 'SIGSTOP');
      const c = await promotedAwayFrom(cl, 'a');
      expect(c.lastFailover?.reason).toMatch(/^primary a unreachable for \d+ ms$/);
      await progress(history, 200, 'allocations on b');
      await kill(cl.nodes.a.child, 'SIGCONT');
      await untilInSync(cl);
      await progress(history, 100, 'allocations with a back as standby');
    });
    expect((await cl.config()).primary.id).toBe('b');
  });

  it('a client sent to a paused primary by the standby (whose stream from it is silent, not reset) gives up the connection and reaches the promoted node within its deadline', async () => {
    const cl = await startCluster();
    await untilInSync(cl);
    await kill(cl.nodes.a.child, 'SIGSTOP');
    // b still follows a: it names a as the primary until it is promoted.
    const client = new TallyClient({ addresses: [cl.nodes.b.address, cl.nodes.a.address] });
    try {
      const first = await client.allocate('late', 1, { deadlineMs: 8000 });
      const second = await client.allocate('late', 1, { deadlineMs: 8000 });
      expect(second.first).toBeGreaterThan(first.first);
      expect((await cl.config()).primary.id).toBe('b');
    } finally {
      client.close();
      await kill(cl.nodes.a.child, 'SIGCONT');
    }
  });
});
