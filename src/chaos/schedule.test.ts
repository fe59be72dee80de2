import { describe, expect, it } from 'vitest';
import { cutsOf } from './faults';
import {
  faultKinds,
  faultsConcurrentMax,
  makeSchedule,
  resourcesOf,
  type FaultKind,
} from './schedule';

const all: FaultKind[] = [...faultKinds];

describe('chaos schedule', () => {
  it('is a function of the seed, the duration and the kinds: same inputs, same faults and digest', () => {
    const a = makeSchedule(42, 300_000, all);
    const b = makeSchedule(42, 300_000, all);
    expect(b).toEqual(a);
    expect(makeSchedule(43, 300_000, all).digest).not.toBe(a.digest);
    expect(makeSchedule(42, 300_000, ['kill', 'pause']).digest).not.toBe(a.digest);
  });

  it('uses every kind it is given and only those, within the duration', () => {
    const s = makeSchedule(7, 600_000, all);
    expect(new Set(s.faults.map((f) => f.kind))).toEqual(new Set(all));
    const only = makeSchedule(7, 600_000, ['pause', 'enospc']);
    expect(new Set(only.faults.map((f) => f.kind))).toEqual(new Set(['pause', 'enospc']));
    for (const f of s.faults) expect(f.startMs + f.holdMs).toBeLessThanOrEqual(600_000);
    // Dense enough for CI's 50 faults in 150 s.
    expect(makeSchedule(1, 150_000, all).faults.length).toBeGreaterThanOrEqual(55);
  });

  it('never overlaps two faults on one process, one disk, or two that destroy data; at most faultsConcurrentMax at once', () => {
    for (let seed = 0; seed < 50; seed++) {
      const { faults } = makeSchedule(seed, 120_000, all);
      for (const [i, f] of faults.entries()) {
        const overlapping = faults.filter(
          (g, j) => j !== i && g.startMs < f.startMs + f.holdMs && f.startMs < g.startMs + g.holdMs,
        );
        const mine = new Set(resourcesOf(f));
        for (const g of overlapping) {
          expect(
            resourcesOf(g).filter((r) => mine.has(r)),
            `seed ${seed} #${f.seq}/#${g.seq}`,
          ).toEqual([]);
        }
        const atStart = faults.filter(
          (g) => g.startMs <= f.startMs && f.startMs < g.startMs + g.holdMs,
        );
        expect(atStart.length).toBeLessThanOrEqual(faultsConcurrentMax);
      }
    }
  });

  it('a fault that destroys a node’s data holds the other node too: no kill or full disk on the only copy meanwhile', () => {
    const f = { kind: 'disk-wipe', target: 'a' } as const;
    expect(resourcesOf(f)).toEqual(expect.arrayContaining(['process:b', 'disk:b', 'history']));
    expect(resourcesOf({ kind: 'disk-tail', target: 'b' })).toEqual(
      expect.arrayContaining(['process:a', 'disk:a']),
    );
  });

  it('partitions cut what their names say', () => {
    const f = { seq: 1, startMs: 0, holdMs: 1 };
    expect(cutsOf({ ...f, kind: 'partition-one-way', target: 'a', peer: 'controller' })).toEqual([
      ['a', 'controller'],
    ]);
    expect(cutsOf({ ...f, kind: 'partition-primary-standby', target: 'a', peer: 'b' })).toEqual([
      ['a', 'b'],
      ['b', 'a'],
    ]);
    expect(cutsOf({ ...f, kind: 'partition-client-node', target: 'b' })).toEqual([
      ['host', 'b'],
      ['b', 'host'],
    ]);
    const full = cutsOf({ ...f, kind: 'partition-full', target: 'controller' });
    expect(new Set(full.map(([x, y]) => `${x}>${y}`))).toEqual(
      new Set([
        'controller>a',
        'a>controller',
        'controller>b',
        'b>controller',
        'controller>host',
        'host>controller',
      ]),
    );
  });
});
