/**
 * A node that comes back with acknowledged records cut from its WAL tail must not hand those
 * IDs out again (real processes; found by the chaos runner in CI, seed 320964).
 *
 * A disk may lose the last bytes it was told were durable (a cache that lied about a flush, a
 * damaged sector at the end of the file). Recovery cannot tell such a tail from a write cut
 * short by the crash, so it cuts it off — right for a record never acknowledged, wrong for one
 * that was. Every acknowledged record is on the other node too: the node that cut its tail
 * must not decide anything the other's longer log contradicts. Before the fix, the primary
 * came back before the controller failed over, was placed as primary again on its shorter log,
 * truncated the standby's copy of the records (log matching took them for a suffix it never
 * acknowledged), and allocated the same IDs again.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { damageTail } from '../../src/chaos/disk';
import {
  allocOn,
  cleanUpClusterTest,
  kill,
  restartBeforeFailover,
  startCluster,
  untilIn,
  untilInSync,
  type Cluster,
} from '../integration/cluster-process';
import { assertBuilt, nodeStatus } from '../integration/serve-process';

beforeAll(assertBuilt);
afterEach((ctx) => cleanUpClusterTest(ctx.task.result?.state === 'fail'));

/** Zeroes the last `bytes` bytes the newest WAL segment holds; returns how many it zeroed. */
async function zeroDurableTail(dataDir: string, bytes: number): Promise<number> {
  return (await damageTail(dataDir, 'torn', 0, bytes)).bytes;
}

/** Waits until a node serves as primary; returns which. */
function untilServing(cl: Cluster): Promise<'a' | 'b'> {
  return untilIn(cl, 'a primary serving', async () => {
    for (const id of ['a', 'b'] as const) {
      const s = await nodeStatus(cl.nodes[id].address).catch(() => null);
      if (s?.role === 'primary' && s.state === 'serving') return id;
    }
    return null;
  });
}

describe('a WAL tail lost after it was acknowledged', () => {
  it('the primary comes back without its last acknowledged records: none of their IDs is issued again', async () => {
    const cl = await startCluster(
      undefined,
      {},
      { controllerArgs: { '--failover-timeout-ms': '5000' } },
    );
    await untilInSync(cl);
    const acked = await allocOn(cl.nodes.a.address, 60);
    // The records about to be damaged are acknowledged after the controller's last look at a:
    // the position it vouches for a does not cover them (it lags by a probe interval).
    await kill(cl.controllerChild, 'SIGSTOP');
    acked.push(...(await allocOn(cl.nodes.a.address, 20)));
    const before = await nodeStatus(cl.nodes.a.address);

    // a's last acknowledged record loses its last bytes while a is down (the standby never
    // heard it was acknowledged: the commit index rides on the next append, and there was
    // none); the controller does not act before a is back (a restart quicker than a failover).
    let zeroed = 0;
    const a = await restartBeforeFailover(cl, 'a', { LOG_LEVEL: 'info' }, async () => {
      zeroed = await zeroDurableTail(cl.dataDir('a'), 8);
    });
    expect(zeroed).toBe(8);

    // The cluster serves again (whoever is primary), and nothing acknowledged is issued again.
    const primary = await untilServing(cl);
    const after = await allocOn(cl.nodes[primary].address, 20);
    // b, which holds the record, took over: a stepped down rather than cut it.
    expect(primary).toBe('b');
    const all = [...acked, ...after];
    expect(new Set(all).size).toBe(all.length);
    expect(Math.min(...after)).toBeGreaterThan(Math.max(...acked));
    // The premise: a's recovery cut acknowledged records off (the log it recovered is shorter).
    const recovered = a
      .stderr()
      .split('\n')
      .filter((l) => l.includes('node: recovered'))
      .map((l) => JSON.parse(l) as { lastIndex: number; tornTail: unknown });
    expect(recovered.length).toBe(1);
    expect(recovered[0]?.tornTail).not.toBeNull();
    expect(recovered[0]?.lastIndex).toBeLessThan(Number(before.lastIndex));
    await untilInSync(cl);
  });

  it('the primary comes back with its tail cut while the standby is down: it does not go on alone', async () => {
    const degradeAfterMs = 300;
    const cl = await startCluster(
      undefined,
      {},
      {
        controllerArgs: { '--failover-timeout-ms': '5000' },
        nodeEnv: { TALLY_DEGRADE_AFTER_MS: String(degradeAfterMs) },
      },
    );
    await untilInSync(cl);
    const acked = await allocOn(cl.nodes.a.address, 40);
    await kill(cl.controllerChild, 'SIGSTOP');
    acked.push(...(await allocOn(cl.nodes.a.address, 20)));
    // b goes down for good (as far as a knows); a loses its last record's bytes and restarts.
    await kill(cl.nodes.b.child, 'SIGKILL');
    const a = await restartBeforeFailover(cl, 'a', { LOG_LEVEL: 'info' }, async () => {
      await zeroDurableTail(cl.dataDir('a'), 8);
    });
    // Past the degrade delay a would ask to go on alone and serve (before the fix it did, and
    // handed out the lost record's ID again); it says instead why it holds on, and does not.
    const outcome = await untilIn(cl, 'a serving alone, or holding on for b', async () => {
      if (a.stderr().includes('does not go on without it')) return 'held';
      const s = await nodeStatus(cl.nodes.a.address).catch(() => null);
      return s?.state === 'serving' ? 'serving' : null;
    });
    expect(outcome).toBe('held');
    await new Promise((r) => setTimeout(r, 10 * degradeAfterMs));
    const aState = await nodeStatus(cl.nodes.a.address);
    expect(aState.state).not.toBe('serving');
    expect((await cl.config()).inSync).toContain('b');

    // b is back: it holds the record a lost; whoever serves, no acknowledged ID comes again.
    cl.startNode('b');
    const primary = await untilServing(cl);
    const after = await allocOn(cl.nodes[primary].address, 20);
    const all = [...acked, ...after];
    expect(new Set(all).size).toBe(all.length);
    expect(Math.min(...after)).toBeGreaterThan(Math.max(...acked));
    await untilInSync(cl);
  });
});
