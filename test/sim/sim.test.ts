/**
 * The simulator on itself: a seed replays byte for byte, a small sweep holds every invariant,
 * and planted bugs are caught (the seeds that caught them when they were planted first).
 * The CI sweep of 2,000 seeds is `npm run sim -- --seeds 2000` in .ci/run.
 */
import { describe, expect, it } from 'vitest';
import { runSeed, type PlannedFault, type FaultKind } from './run';

describe('deterministic simulation', () => {
  it('the same seed gives the same run: trace, history and digest', async () => {
    const first = await runSeed({ seed: 7 });
    const again = await runSeed({ seed: 7 });
    expect(again.digest).toBe(first.digest);
    expect(again.trace).toEqual(first.trace);
    expect(first.faultCount).toBeGreaterThan(0);
    const other = await runSeed({ seed: 8 });
    expect(other.digest).not.toBe(first.digest);
  });

  it('a sweep of 30 seeds: no violation, and every seed serves again after the heal or waits for an operator by design', async () => {
    for (let seed = 1; seed <= 30; seed++) {
      const r = await runSeed({ seed });
      expect(r.violations, `seed ${seed}`).toEqual([]);
      expect(r.recoveredAfterMs !== null || r.waitsForOperator !== null, `seed ${seed}`).toBe(true);
    }
  });

  it('catches an acknowledgement before the standby fsynced (planted), and a recovery that drops an acknowledged record (planted)', async () => {
    const ack = await runSeed({ seed: 2, plant: 'ack-before-standby-fsync' });
    // Caught by an invariant assertion in the code or by the history checker.
    expect(ack.violations.join('\n')).toMatch(/AssertionFailure|duplicate|backwards|real-time/);
    const truncated = await runSeed({ seed: 2, plant: 'truncate-acked-at-recovery' });
    expect(truncated.violations.join('\n')).toMatch(
      /AssertionFailure|duplicate|backwards|real-time/,
    );
    // Unplanted, the same seeds pass.
    expect((await runSeed({ seed: 2 })).violations).toEqual([]);
  });

  /** The fault kinds of the sweep that found the lose-tail seeds (their schedules replay). */
  const loseTailKinds: FaultKind[] = [
    'crash-node',
    'crash-node-torn',
    'crash-controller',
    'controller-loses-disk',
    'partition-replication',
    'lossy-replication',
    'cut-admin',
    'cut-client',
    'enospc',
    'bit-flip',
    'lose-tail',
    'wipe-disk',
    'old-disk',
  ];

  // Regression seeds: the first sweep with the lose-tail fault (a stopped node's disk loses
  // synced bytes at the end of its WAL) failed on these nine, with duplicate IDs: a primary
  // that had acknowledged alone came back with its tail cut and served on. It now waits for an
  // operator (its lost records have no other copy); the seeds must pass, served or waiting.
  it('a primary that acknowledged alone and lost its synced WAL tail does not serve on (seeds 98 380 402 451 458 1017 1311 1954 1989)', async () => {
    for (const seed of [98, 380, 402, 451, 458, 1017, 1311, 1954, 1989]) {
      const r = await runSeed({ seed, kinds: loseTailKinds });
      expect(r.faults['lose-tail'], `seed ${seed}`).toBeGreaterThan(0);
      expect(r.violations, `seed ${seed}`).toEqual([]);
      expect(r.recoveredAfterMs !== null || r.waitsForOperator !== null, `seed ${seed}`).toBe(true);
    }
  });

  /** The fault kinds of the long sweep that found the seeds below. */
  const longSweepKinds: FaultKind[] = [
    'crash-node',
    'crash-node-torn',
    'crash-controller',
    'controller-loses-disk',
    'partition-replication',
    'one-way-replication',
    'lossy-replication',
    'cut-admin',
    'cut-client',
    'enospc',
    'hang-disk',
    'bit-flip',
    'lose-tail',
    'wipe-disk',
    'old-disk',
  ];

  // The first long sweep (100,000 seeds) stopped at these: 4065, 6292, 12906, 14172 and 15770
  // never served again after a hung disk — the simulator's controller↔node calls had no
  // deadline, unlike the real ones (a call to a node whose disk hung, or that died meanwhile,
  // waited forever and held the controller); 6891 and 15972 handed IDs out twice after a lone
  // primary lost whole records at its WAL's end, which no recovery can see (now modelled only
  // as a loss that tears a record when the store may be the only copy; README, Known
  // limitations). Each must pass: served again, or waiting for an operator by design.
  it('hung disks and lone-copy tail losses of the long sweep (seeds 4065 6292 6891 12906 14172 15770 15972)', async () => {
    for (const seed of [4065, 6292, 6891, 12906, 14172, 15770, 15972]) {
      const r = await runSeed({ seed, kinds: longSweepKinds });
      expect(r.violations, `seed ${seed}`).toEqual([]);
      expect(r.recoveredAfterMs !== null || r.waitsForOperator !== null, `seed ${seed}`).toBe(true);
    }
  });

  // Seed 23799 of the long sweep: the controller promoted b to epoch 2 while b's disk hung,
  // then crashed and lost its disk. Rebuilt from b's report (epoch 1 of a), the configuration
  // made a primary, which began epoch 2 itself; b's promotion then finished: two primaries of
  // epoch 2, each approved to acknowledge alone (they fenced each other over replication; cut
  // apart, both would have served). The rebuild now waits for the promotion under way.
  // Found in review, scripted here: the controller promotes b (a crashed), the link to b stalls
  // with the promotion in it, the controller loses its disk; the new one rebuilds with a as
  // primary (alone: b is partitioned from it); then the stalled promotion arrives. Before
  // ballots b took it: two primaries of epoch 2, each approved to acknowledge alone.
  it('a promotion from a controller whose configuration was rebuilt since is refused (a stalled link delivers it late)', async () => {
    const plan: PlannedFault[] = [
      { atMs: 1000, kind: 'stall-admin', victim: 'b', holdMs: 6500 },
      { atMs: 1200, kind: 'crash-node', victim: 'a', holdMs: 3000 },
      { atMs: 2500, kind: 'controller-loses-disk', victim: 'a', holdMs: 500 },
      { atMs: 2600, kind: 'partition-replication', victim: 'a', holdMs: 5500 },
    ];
    const r = await runSeed({ seed: 1, plan });
    // The scenario happened, in this order: the promotion held, the controller's disk lost, a
    // placed as primary by the rebuilt configuration, the promotion delivered (and refused).
    let from = 0;
    for (const step of [
      'role change held',
      'controller disk replaced',
      'a up: primary',
      'admin link to b delivers again',
    ]) {
      const i = r.trace.findIndex((l, j) => j >= from && l.includes(step));
      expect(i, step).toBeGreaterThanOrEqual(from);
      from = i + 1;
    }
    expect(r.trace.filter((l) => l.includes('b promoted'))).toEqual([]);
    expect(r.violations).toEqual([]);
    expect(r.recoveredAfterMs).not.toBeNull();
  });

  it('a controller that lost its disk waits for a promotion still under way (seed 23799)', async () => {
    const r = await runSeed({ seed: 23799, kinds: longSweepKinds });
    expect(r.faults['controller-loses-disk']).toBe(1);
    expect(r.faults['hang-disk']).toBe(1);
    expect(r.violations).toEqual([]);
    expect(r.recoveredAfterMs).not.toBeNull();
  });
});
