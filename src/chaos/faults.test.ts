import { describe, expect, it } from 'vitest';
import type { ChaosCluster } from './cluster';
import { holdsHistory } from './faults';
import type { NodeId } from './schedule';

interface View {
  inSync: string[];
  incarnations: Record<NodeId, string>;
}
interface NodeSeen {
  incarnation: string;
  catchingUp: boolean;
  tailCut?: boolean;
}

/** What holdsHistory reads of a cluster: the controller's view and each node's Status. */
function fakeCluster(view: View | null, nodes: Partial<Record<NodeId, NodeSeen>>): ChaosCluster {
  const fake = {
    garbled: new Set<NodeId>(),
    config: () =>
      Promise.resolve(
        view === null
          ? null
          : {
              inSync: view.inSync,
              members: (['a', 'b'] as const).map((id) => ({
                id,
                incarnation: view.incarnations[id],
              })),
            },
      ),
    nodeStatus: (id: NodeId) => {
      const n = nodes[id];
      return Promise.resolve(
        n === undefined
          ? null
          : {
              incarnation: n.incarnation,
              replication: { catchingUp: n.catchingUp },
              tailCut: n.tailCut ?? false,
            },
      );
    },
  };
  return fake as unknown as ChaosCluster;
}

const known = { a: 'dir-a1', b: 'dir-b1' };

describe('chaos runner: may the other node’s data be destroyed? (holdsHistory)', () => {
  it('yes when the controller lists the node in sync and it answers on the directory the controller knows', async () => {
    const cluster = fakeCluster(
      { inSync: ['a', 'b'], incarnations: known },
      { b: { incarnation: 'dir-b1', catchingUp: false } },
    );
    expect(await holdsHistory(cluster, 'b', 0)).toBe(true);
  });

  it('no when its disk was replaced and the controller has not noticed yet (seed 1203: both copies lost)', async () => {
    const cluster = fakeCluster(
      { inSync: ['a', 'b'], incarnations: known },
      { b: { incarnation: 'dir-b2', catchingUp: true } },
    );
    expect(await holdsHistory(cluster, 'b', 0)).toBe(false);
  });

  it('no when it is down, catching up (a cut torn tail), out of the in-sync set, garbled, or the controller is unreachable', async () => {
    const inSync = { inSync: ['a', 'b'], incarnations: known };
    expect(await holdsHistory(fakeCluster(inSync, {}), 'b', 0)).toBe(false);
    const cut = fakeCluster(inSync, { b: { incarnation: 'dir-b1', catchingUp: true } });
    expect(await holdsHistory(cut, 'b', 0)).toBe(false);
    // A primary's Status never says catching up: one that cut a torn tail says tailCut.
    const cutPrimary = { incarnation: 'dir-b1', catchingUp: false, tailCut: true };
    expect(await holdsHistory(fakeCluster(inSync, { b: cutPrimary }), 'b', 0)).toBe(false);
    const healthy = { b: { incarnation: 'dir-b1', catchingUp: false } };
    const out = fakeCluster({ inSync: ['a'], incarnations: known }, healthy);
    expect(await holdsHistory(out, 'b', 0)).toBe(false);
    const garbled = fakeCluster(inSync, healthy);
    garbled.garbled.add('b');
    expect(await holdsHistory(garbled, 'b', 0)).toBe(false);
    expect(await holdsHistory(fakeCluster(null, healthy), 'b', 0)).toBe(false);
  });
});
