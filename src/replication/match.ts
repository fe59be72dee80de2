/**
 * Log matching: the last index at which the standby's log agrees with the primary's.
 *
 * Two records with the same (epoch, index) are the same record: a primary writes in epoch n
 * only after its standby accepted (n, primary id), a standby that accepted n never accepts n
 * from anyone else, and every append is checked against the record before it. So both logs
 * agree up to the highest index whose epoch is the same in both, and everything the standby
 * holds after it is a suffix the primary never had (never acknowledged): it is truncated.
 */
import type { EpochStart, LogShape } from './protocol';

export interface PrimaryShape {
  lastIndex: number;
  /** Epoch boundaries of the primary's whole known log, ascending. */
  epochs: EpochStart[];
  /** Epoch of the record at `index` if the primary can tell (not compacted), else null. */
  epochAt(index: number): number | null;
}

/** The index range [from, to] that `epoch` covers in a log, or null. */
function epochRange(
  epochs: EpochStart[],
  lastIndex: number,
  epoch: number,
): [number, number] | null {
  for (let k = 0; k < epochs.length; k++) {
    const start = epochs[k] as EpochStart;
    if (start.epoch !== epoch) continue;
    const next = epochs[k + 1];
    const to = next === undefined ? lastIndex : next.index - 1;
    return to >= start.index ? [start.index, to] : null;
  }
  return null;
}

/**
 * The highest index up to which both logs agree (the same epoch at it), or null when the
 * primary cannot tell (no epoch of the standby's overlaps its own, nor its snapshot's record).
 * Epoch boundaries include those of records compacted into a snapshot (kept with it), so the
 * agreement can lie below either side's WAL.
 */
export function agreedIndex(standby: LogShape, primary: PrimaryShape): number | null {
  for (let k = standby.epochs.length - 1; k >= 0; k--) {
    const start = standby.epochs[k] as EpochStart;
    const next = standby.epochs[k + 1];
    const to = next === undefined ? standby.lastIndex : next.index - 1;
    const theirs = epochRange(primary.epochs, primary.lastIndex, start.epoch);
    if (theirs === null) continue;
    const lo = Math.max(start.index, theirs[0]);
    const hi = Math.min(to, theirs[1]);
    if (lo <= hi) return hi;
  }
  // Nothing in the standby's log matches: its snapshot is the last chance.
  if (standby.snapshotIndex === 0) return 0;
  const epoch = primary.epochAt(standby.snapshotIndex);
  return epoch === standby.snapshotEpoch ? standby.snapshotIndex : null;
}

/**
 * The highest index both logs hold with the same epoch, or 'snapshot' when the standby must
 * be reset from a snapshot (its log diverges at or below its own snapshot, which it cannot cut).
 */
export function matchIndex(standby: LogShape, primary: PrimaryShape): number | 'snapshot' {
  const agreed = agreedIndex(standby, primary);
  return agreed !== null && agreed >= standby.snapshotIndex ? agreed : 'snapshot';
}
