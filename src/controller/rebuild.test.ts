import { describe, expect, it } from 'vitest';
import { seededRandom } from '../testing/random';
import type { NodeReport } from './members';
import { buildConfig } from './rebuild';

const a = { id: 'a', address: 'a:1' };
const b = { id: 'b', address: 'b:1' };

function report(changes: Partial<NodeReport>): NodeReport {
  return {
    role: 'standby',
    state: 'serving',
    epoch: 1,
    epochPrimary: 'a',
    incarnation: 'dir',
    clusterId: 'c1',
    lastIndex: 10,
    lastEpoch: 1,
    catchingUp: false,
    acknowledged: { epoch: 0, index: 0 },
    writeStallMs: 0,
    ...changes,
  };
}

const primaryA = report({ role: 'primary', incarnation: 'dir-a' });
const standbyB = report({ incarnation: 'dir-b' });

function build(reports: Record<string, NodeReport>, bootstrap = false) {
  return buildConfig([a, b], new Map(Object.entries(reports)), bootstrap, seededRandom(1));
}

describe('rebuilding the configuration from the nodes (buildConfig)', () => {
  it('builds from a primary that began its epoch and a standby whose log goes no further', () => {
    const built = build({ a: primaryA, b: standbyB });
    expect(built).toMatchObject({ config: { primary: a, standby: b, inSync: ['a'], epoch: 1 } });
  });

  it('waits while a member reports a promotion under way — also for an operator’s --bootstrap', () => {
    const promoting = { a: primaryA, b: { ...standbyB, promotingEpoch: 2 } };
    for (const bootstrap of [false, true]) {
      const built = build(promoting, bootstrap);
      expect(built).toEqual({
        waiting:
          'no stored configuration: waiting for the promotion of b to epoch 2 (begun by an earlier controller) to finish',
        pending: true,
      });
    }
  });

  it('waits for a member that reports it failed (its last meta write may or may not be on disk)', () => {
    const built = build({ a: primaryA, b: { ...standbyB, state: 'failed' } });
    expect(built).toMatchObject({ waiting: expect.stringMatching(/b, which failed, to restart/) });
  });
});
