import { describe, expect, it } from 'vitest';
import { seededRandom } from '../testing/random';
import { agreedIndex, matchIndex, type PrimaryShape } from './match';
import type { EpochStart, LogShape } from './protocol';

/**
 * A log is written down as the epoch of each of its records: log[i - 1] is the epoch of the
 * record at index i. Two logs hold the same record at index i exactly when they have the same
 * epoch there (the (epoch, index) rule), so the truth matchIndex approximates is computable.
 */
type Log = number[];

/** runs([2, 7], [3, 5]) = epoch 2 for indexes 1..7, then epoch 3 for 8..12. */
function runs(...parts: Array<[epoch: number, count: number]>): Log {
  return parts.flatMap(([epoch, count]) => Array<number>(count).fill(epoch));
}

/** Epoch boundaries of log[from..], the first one clamped to `from` (as Wal.epochs() does). */
function boundaries(log: Log, from: number): EpochStart[] {
  const out: EpochStart[] = [];
  for (let index = from; index <= log.length; index++) {
    const epoch = log[index - 1] as number;
    if (out.length === 0 || (out[out.length - 1] as EpochStart).epoch !== epoch) {
      out.push({ epoch, index });
    }
  }
  return out;
}

/**
 * The standby's shape: records firstIndex..end in its WAL, 1..snapshotIndex in its snapshot.
 * (firstIndex <= snapshotIndex + 1: there is never a gap between the two.)
 */
function standbyShape(
  log: Log,
  opts: { snapshotIndex?: number; firstIndex?: number; history?: boolean } = {},
) {
  const snapshotIndex = opts.snapshotIndex ?? 0;
  const firstIndex = opts.firstIndex ?? 1;
  if (firstIndex > snapshotIndex + 1 || snapshotIndex > log.length) {
    throw new Error('test bug: inconsistent standby shape');
  }
  const shape: LogShape = {
    firstIndex,
    lastIndex: log.length,
    // history: the boundaries of compacted records too, as kept with the snapshot.
    epochs: boundaries(log, opts.history === true ? 1 : firstIndex),
    snapshotIndex,
    snapshotEpoch: snapshotIndex > 0 ? (log[snapshotIndex - 1] as number) : 0,
  };
  return shape;
}

/**
 * The primary's shape; records below firstIndex were compacted (epochAt cannot tell). With
 * `history` it still knows where their epochs began (kept with its snapshot).
 */
function primaryShape(
  log: Log,
  opts: { firstIndex?: number; history?: boolean } = {},
): PrimaryShape {
  const firstIndex = opts.firstIndex ?? 1;
  return {
    lastIndex: log.length,
    epochs: boundaries(log, opts.history === true ? 1 : firstIndex),
    epochAt: (index) =>
      index >= firstIndex && index <= log.length ? (log[index - 1] as number) : null,
  };
}

/** The true longest common prefix of two logs. */
function commonPrefix(a: Log, b: Log): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/**
 * What any answer must satisfy: a number is an index the standby may keep everything up to
 * (no higher than the true common prefix, so both logs agree up to it) and may cut after
 * (not below its own snapshot, which it cannot cut).
 */
function expectSafe(
  result: number | 'snapshot',
  standby: Log,
  primary: Log,
  snapshotIndex: number,
  why: string,
): void {
  if (result === 'snapshot') return;
  const common = commonPrefix(standby, primary);
  expect(result, `${why}: ${result} is past the common prefix ${common}`).toBeLessThanOrEqual(
    common,
  );
  expect(
    result,
    `${why}: ${result} is below the standby snapshot ${snapshotIndex}`,
  ).toBeGreaterThanOrEqual(snapshotIndex);
  expect(standby.slice(0, result), why).toEqual(primary.slice(0, result));
}

interface Case {
  name: string;
  standby: LogShape;
  primary: PrimaryShape;
  expected: number | 'snapshot';
}

describe('matchIndex: hand-built shapes', () => {
  const cases: Case[] = [
    {
      name: 'empty standby, empty primary',
      standby: standbyShape([]),
      primary: primaryShape([]),
      expected: 0,
    },
    {
      name: 'empty standby → 0',
      standby: standbyShape([]),
      primary: primaryShape(runs([1, 5], [2, 3])),
      expected: 0,
    },
    {
      name: 'identical logs → the standby last index',
      standby: standbyShape(runs([1, 5], [2, 5])),
      primary: primaryShape(runs([1, 5], [2, 5])),
      expected: 10,
    },
    {
      name: 'standby behind in the same epoch → its last index',
      standby: standbyShape(runs([1, 3], [2, 4])),
      primary: primaryShape(runs([1, 3], [2, 10])),
      expected: 7,
    },
    {
      name: 'standby behind by whole epochs → its last index',
      standby: standbyShape(runs([1, 5])),
      primary: primaryShape(runs([1, 5], [2, 5], [3, 5])),
      expected: 5,
    },
    {
      name: 'standby ahead in the same epoch (primary crashed before its fsync, restarted in epoch 3) → 7',
      standby: standbyShape(runs([2, 10])),
      primary: primaryShape(runs([2, 7], [3, 5])),
      expected: 7,
    },
    {
      name: 'standby ahead of a primary whose log is a prefix of it → the primary last index',
      standby: standbyShape(runs([1, 8])),
      primary: primaryShape(runs([1, 5])),
      expected: 5,
    },
    {
      name: 'standby holds a later epoch the primary never had → end of the last common epoch',
      standby: standbyShape(runs([1, 4], [2, 3], [3, 5])),
      primary: primaryShape(runs([1, 4], [2, 3], [4, 6])),
      expected: 7,
    },
    {
      name: 'standby ahead within the common epoch and then in a divergent one → end of the common part',
      standby: standbyShape(runs([1, 4], [2, 6], [3, 2])),
      primary: primaryShape(runs([1, 4], [2, 2], [4, 9])),
      expected: 6,
    },
    {
      name: 'several divergent epochs on both sides → end of the common prefix',
      standby: standbyShape(runs([1, 4], [3, 2], [5, 3])),
      primary: primaryShape(runs([1, 4], [2, 6], [4, 2])),
      expected: 4,
    },
    {
      name: 'both sides hold epoch 3, at disjoint indexes: not a match by itself',
      standby: standbyShape(runs([1, 4], [3, 2])),
      primary: primaryShape(runs([1, 4], [2, 3], [3, 4])),
      expected: 4,
    },
    {
      name: 'no common epoch and no snapshot → 0',
      standby: standbyShape(runs([2, 5])),
      primary: primaryShape(runs([3, 5])),
      expected: 0,
    },
    {
      name: 'no common epoch, standby snapshot whose epoch the primary confirms → the snapshot index',
      standby: standbyShape(runs([1, 5], [2, 5], [4, 4]), { snapshotIndex: 10, firstIndex: 11 }),
      primary: primaryShape(runs([1, 5], [2, 5], [3, 10])),
      expected: 10,
    },
    {
      name: 'empty standby WAL after a snapshot install, confirmed by the primary → the snapshot index',
      standby: standbyShape(runs([1, 5], [2, 5]), { snapshotIndex: 10, firstIndex: 11 }),
      primary: primaryShape(runs([1, 5], [2, 8])),
      expected: 10,
    },
    {
      name: 'standby diverges right after its snapshot (the snapshot is the last common record) → the snapshot index',
      standby: standbyShape(runs([1, 5], [2, 5]), { snapshotIndex: 5, firstIndex: 6 }),
      primary: primaryShape(runs([1, 5], [3, 5])),
      expected: 5,
    },
    {
      name: 'no common epoch, primary cannot tell the snapshot epoch (compacted) → snapshot',
      standby: standbyShape(runs([1, 5], [2, 5], [4, 4]), { snapshotIndex: 10, firstIndex: 11 }),
      primary: primaryShape(runs([1, 5], [2, 5], [3, 10]), { firstIndex: 15 }),
      expected: 'snapshot',
    },
    {
      name: 'no common epoch, primary log ends before the standby snapshot (epochAt null) → snapshot',
      standby: standbyShape(runs([1, 5], [2, 5]), { snapshotIndex: 10, firstIndex: 11 }),
      primary: primaryShape(runs([1, 5], [3, 2])),
      expected: 'snapshot',
    },
    {
      name: 'no common epoch, primary has another epoch at the snapshot index → snapshot',
      standby: standbyShape(runs([1, 5], [2, 5], [4, 2]), { snapshotIndex: 10, firstIndex: 11 }),
      primary: primaryShape(runs([1, 5], [3, 10])),
      expected: 'snapshot',
    },
    {
      name: 'epochAt answers another epoch at the snapshot index (explicit shape) → snapshot',
      standby: {
        firstIndex: 21,
        lastIndex: 20,
        epochs: [],
        snapshotIndex: 20,
        snapshotEpoch: 4,
      },
      primary: {
        lastIndex: 30,
        epochs: [{ epoch: 5, index: 21 }],
        epochAt: (index) => (index >= 11 && index <= 30 ? (index <= 20 ? 3 : 5) : null),
      },
      expected: 'snapshot',
    },
    {
      name: 'divergence below the standby snapshot index → snapshot',
      standby: standbyShape(runs([1, 5], [2, 5]), { snapshotIndex: 8 }),
      primary: primaryShape(runs([1, 5], [3, 10])),
      expected: 'snapshot',
    },
    {
      name: 'divergence below the snapshot, standby WAL compacted up to it → snapshot',
      standby: standbyShape(runs([1, 5], [2, 5]), { snapshotIndex: 8, firstIndex: 7 }),
      primary: primaryShape(runs([1, 5], [3, 10])),
      expected: 'snapshot',
    },
    {
      name: 'divergence exactly at the snapshot index → snapshot',
      standby: standbyShape(runs([1, 4], [2, 6]), { snapshotIndex: 5 }),
      primary: primaryShape(runs([1, 4], [3, 6])),
      expected: 'snapshot',
    },
    {
      name: 'common prefix past the standby snapshot → end of the common prefix',
      standby: standbyShape(runs([1, 10]), { snapshotIndex: 3, firstIndex: 2 }),
      primary: primaryShape(runs([1, 12])),
      expected: 10,
    },
    {
      name: 'compacted primary, common epoch reaching into its log → the exact common prefix',
      standby: standbyShape(runs([1, 10], [2, 10])),
      primary: primaryShape(runs([1, 10], [2, 30]), { firstIndex: 15 }),
      expected: 20,
    },
  ];

  it.each(cases)('$name', ({ standby, primary, expected }) => {
    expect(matchIndex(standby, primary)).toBe(expected);
  });

  /** The primary compacted past the standby's range: the answer is only required to be safe. */
  const compacted: Array<{
    name: string;
    standby: Log;
    primary: Log;
    snapshotIndex?: number;
    standbyFirst?: number;
    primaryFirst: number;
  }> = [
    {
      name: 'primary epoch list starts after the standby last index (standby is a prefix)',
      standby: runs([1, 10]),
      primary: runs([1, 10], [2, 40]),
      primaryFirst: 30,
    },
    {
      name: 'primary compacted into the common epoch, past the standby last index',
      standby: runs([1, 10]),
      primary: runs([1, 60]),
      primaryFirst: 50,
    },
    {
      name: 'primary compacted past a standby snapshot it shares',
      standby: runs([1, 10]),
      primary: runs([1, 20]),
      snapshotIndex: 5,
      standbyFirst: 6,
      primaryFirst: 12,
    },
    {
      name: 'primary compacted past a standby that also diverges',
      standby: runs([1, 10], [5, 5]),
      primary: runs([1, 10], [3, 20]),
      primaryFirst: 20,
    },
    {
      name: 'primary compacted past a standby that diverges after its snapshot',
      standby: runs([1, 10], [5, 5]),
      primary: runs([1, 10], [3, 20]),
      snapshotIndex: 8,
      standbyFirst: 9,
      primaryFirst: 20,
    },
  ];

  it.each(compacted)(
    'compacted primary: $name → a safe answer',
    ({ standby, primary, snapshotIndex, standbyFirst, primaryFirst }) => {
      const s = snapshotIndex ?? 0;
      const result = matchIndex(
        standbyShape(standby, { snapshotIndex: s, firstIndex: standbyFirst }),
        primaryShape(primary, { firstIndex: primaryFirst }),
      );
      expectSafe(result, standby, primary, s, `compacted primary (result ${String(result)})`);
    },
  );
});

describe('matchIndex: random logs with a common prefix and divergent suffixes', () => {
  /** Epochs from `floor` on, non-decreasing, mostly repeating the previous one. */
  function suffix(rand: () => number, length: number, floor: number): Log {
    const out: Log = [];
    let epoch = floor + (rand() < 0.5 ? 0 : 1 + Math.floor(rand() * 2));
    for (let i = 0; i < length; i++) {
      if (rand() < 0.15) epoch += 1 + Math.floor(rand() * 2);
      out.push(epoch);
    }
    return out;
  }

  /**
   * Two logs that share `prefix` and then never hold the same epoch at the same index (the
   * (epoch, index) rule); each is non-decreasing. Where the standby would repeat the primary's
   * epoch it moves on to a higher one instead.
   */
  function generate(rand: () => number): { standby: Log; primary: Log; prefix: number } {
    const prefixLength = Math.floor(rand() * 25);
    const prefix = prefixLength > 0 ? suffix(rand, prefixLength, 1) : [];
    const floor = prefix.length > 0 ? (prefix[prefix.length - 1] as number) : 1;
    const primary = [...prefix, ...suffix(rand, Math.floor(rand() * 20), floor)];
    const ownSuffix = suffix(rand, Math.floor(rand() * 20), floor);
    const standby = [...prefix];
    let epoch = 0;
    for (const wanted of ownSuffix) {
      epoch = Math.max(epoch, wanted);
      if (primary[standby.length] === epoch) epoch++;
      standby.push(epoch);
    }
    return { standby, primary, prefix: prefixLength };
  }

  it('never passes the true common prefix, and finds it exactly when nothing was compacted', () => {
    const seeds = 600;
    let exact = 0;
    let snapshots = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const rand = seededRandom(seed);
      const { standby, primary, prefix } = generate(rand);
      const common = commonPrefix(standby, primary);
      const ctx = `seed ${seed}: standby [${standby.join(',')}] primary [${primary.join(',')}]`;
      // The generator's own promise, so a broken generator cannot make the test vacuous.
      expect(common, `${ctx}: generator`).toBe(Math.min(prefix, standby.length, primary.length));
      for (let k = prefix; k < Math.min(standby.length, primary.length); k++) {
        expect(standby[k], `${ctx}: generator reuses (epoch, index) at ${k + 1}`).not.toBe(
          primary[k],
        );
      }

      // Mode 0: whole logs, no snapshot. 1: a standby snapshot (and a compacted standby WAL).
      // 2: like 1, and the primary compacted too.
      const mode = seed % 3;
      const s = mode === 0 ? 0 : Math.floor(rand() * (standby.length + 1));
      const standbyFirst = mode === 0 ? 1 : 1 + Math.floor(rand() * (s + 1));
      const primaryFirst = mode === 2 ? 1 + Math.floor(rand() * (primary.length + 1)) : 1;
      const result = matchIndex(
        standbyShape(standby, { snapshotIndex: s, firstIndex: standbyFirst }),
        primaryShape(primary, { firstIndex: primaryFirst }),
      );
      const where = `${ctx} snapshot ${s} standbyFirst ${standbyFirst} primaryFirst ${primaryFirst} → ${String(result)}`;

      expectSafe(result, standby, primary, s, where);
      // With the primary's log whole, or whenever both WALs still hold the last common record,
      // the answer is exact: the common prefix, or a snapshot when it ends inside the standby's.
      if (primaryFirst === 1 || common >= Math.max(standbyFirst, primaryFirst)) {
        expect(result, where).toBe(common >= s ? common : 'snapshot');
        exact++;
      }
      if (result === 'snapshot') snapshots++;
    }
    // Every mode ran and some answers were exact, some were snapshots.
    expect(exact).toBeGreaterThan(seeds / 2);
    expect(snapshots).toBeGreaterThan(10);
  });

  it('with the boundaries of compacted records kept (as snapshots do), the answer is exact whatever was compacted', () => {
    let snapshots = 0;
    for (let seed = 1; seed <= 600; seed++) {
      const rand = seededRandom(seed);
      const { standby, primary } = generate(rand);
      const common = commonPrefix(standby, primary);
      const s = Math.floor(rand() * (standby.length + 1));
      const standbyFirst = 1 + Math.floor(rand() * (s + 1));
      const primaryFirst = 1 + Math.floor(rand() * (primary.length + 1));
      const standbySide = standbyShape(standby, {
        snapshotIndex: s,
        firstIndex: standbyFirst,
        history: true,
      });
      const primarySide = primaryShape(primary, { firstIndex: primaryFirst, history: true });
      const where = `seed ${seed}: standby [${standby.join(',')}] primary [${primary.join(',')}] snapshot ${s} standbyFirst ${standbyFirst} primaryFirst ${primaryFirst}`;
      // null ("cannot tell") only where no epoch is shared at all: the logs agree on nothing.
      expect(agreedIndex(standbySide, primarySide) ?? 0, where).toBe(common);
      const result = matchIndex(standbySide, primarySide);
      expect(result, where).toBe(common >= s ? common : 'snapshot');
      if (result === 'snapshot') snapshots++;
    }
    expect(snapshots).toBeGreaterThan(10);
  });
});

describe('agreedIndex: a primary that compacted away the epoch a returning standby ends in', () => {
  // The failover benchmark's case: b (epochs 1, 2; snapshot inside epoch 1) comes back to a,
  // which took over in epoch 3 at 81 and has compacted everything below 300.
  const b = runs([1, 40], [2, 45]); // 81..85: b's own suffix, never acknowledged
  const a = runs([1, 40], [2, 40], [3, 400]);
  const standby = standbyShape(b, { snapshotIndex: 30, firstIndex: 21 });

  it('without the boundaries below its WAL the primary cannot tell (it took that for lost history)', () => {
    expect(agreedIndex(standby, primaryShape(a, { firstIndex: 300 }))).toBeNull();
  });

  it('with them it finds the logs agree up to 80: the standby is reset from a snapshot', () => {
    const primary = primaryShape(a, { firstIndex: 300, history: true });
    expect(agreedIndex(standby, primary)).toBe(80);
    expect(matchIndex(standby, primary)).toBe(80);
  });
});
