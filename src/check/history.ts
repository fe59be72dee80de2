/**
 * The history checker: given every allocation as the clients saw it (when it was invoked,
 * when it completed, its outcome and the IDs it was given), does the history keep Tally's
 * invariants, per namespace?
 *   1. unique — no ID acknowledged to two operations (kind `duplicate`);
 *   3. monotonic in real time — if A completed before B was invoked, every ID of B is above
 *      every ID of A (kind `real-time`);
 *   4. never backwards — the counter never goes back below an acknowledged ID (kind
 *      `backwards`).
 * Used by the chaos tests, the chaos runner, the simulator and `tally check-history`; no test
 * framework here. The file format is in history-file.ts and docs/history-format.md.
 *
 * Semantics:
 * - IDs are bigints: a foreign tool's history may pass 2^53.
 * - Only `ok` operations constrain and are constrained. `fail` and `unknown` carry no range (an
 *   unknown one may have taken IDs nobody was told about: a gap, which is allowed); they are
 *   counted and checked for form only.
 * - "A completed before B was invoked" is strict: A.completeMs < B.invokeMs. Equal times are
 *   concurrent, and concurrent operations may be ordered either way.
 * - Let H(B) be the highest ID acknowledged by an operation that completed before B was
 *   invoked. B violates order when B.first <= H(B): `backwards` when B's range lies wholly at
 *   or below H(B) (the counter went back), `real-time` when it straddles H(B). A straddling
 *   range contains H(B), so it is also reported as a duplicate.
 * - A malformed operation (kind `malformed`) is reported and left out of the other checks.
 *
 * Which pair is named, so that "the first violating pair" is well defined:
 * - duplicate: ranges are taken in order of first ID (then position in the input); each range
 *   that starts at or below the highest ID of the ranges before it is reported once, paired
 *   with the range that reached that highest ID (the first to reach it). So duplicates come
 *   out by their lowest shared ID, ascending, and the first one names the lowest ID that two
 *   operations were both given.
 * - real-time / backwards: B is named with the operation A that acknowledged H(B) (of those
 *   that completed before B was invoked, the first in completion order to reach H(B));
 *   reported by B's invocation time, then position in the input.
 * - In a pair, `a` is the earlier operation: for order violations A (it completed before B was
 *   invoked); for duplicates the one invoked first (then the one earlier in the input).
 * - Report order: malformed operations in input order, then namespaces by name (UTF-16 code
 *   units), each with its duplicates, then its order violations. Only the first
 *   maxViolations are kept; violationsTotal counts them all.
 *
 * Cost: O(n log n) — per namespace one sort by first ID and a sweep for duplicates, one sort
 * by invocation and one by completion and a merged sweep for order.
 */
import { formatRange, lastId, malformedReason, type HistoryOp } from './history-op';

export { type HistoryOp, type Outcome } from './history-op';
export {
  formatHistoryLine,
  HistoryFormatError,
  parseHistoryLine,
  readHistory,
  readHistoryFile,
  type HistoryRead,
} from './history-file';

export type ViolationKind = 'duplicate' | 'real-time' | 'backwards' | 'malformed';

export interface Violation {
  kind: ViolationKind;
  message: string;
  /** The earlier operation of the pair (the only one for `malformed`). */
  a?: HistoryOp;
  b?: HistoryOp;
}

export interface CheckReport {
  ok: boolean;
  operations: number;
  /** Well-formed `ok` operations, and the IDs they were given. */
  acknowledged: number;
  acknowledgedIds: bigint;
  failed: number;
  unknown: number;
  namespaces: number;
  /** The first maxViolations violations, in report order. */
  violations: Violation[];
  violationsTotal: number;
}

export interface CheckOptions {
  maxViolations?: number;
}

/** Violations kept in a report unless told otherwise: the first few say what went wrong. */
export const violationsMaxDefault = 20;

class Violations {
  readonly kept: Violation[] = [];
  total = 0;

  constructor(private readonly max: number) {}

  add(make: () => Violation): void {
    this.total++;
    // Messages are built only for the violations kept: a broken history may have millions.
    if (this.kept.length < this.max) this.kept.push(make());
  }
}

/** An operation in a message: `5..7 (invoked at 3, completed at 4)`. */
function describe(op: HistoryOp): string {
  const range = formatRange(op.first as bigint, lastId(op));
  return `${range} (invoked at ${op.invokeMs}, completed at ${op.completeMs})`;
}

/** Orders a pair as the report does: invoked first, then earlier in the input. */
function earlierFirst(ops: readonly HistoryOp[], i: number, j: number): [HistoryOp, HistoryOp] {
  const x = ops[i] as HistoryOp;
  const y = ops[j] as HistoryOp;
  const xFirst = x.invokeMs < y.invokeMs || (x.invokeMs === y.invokeMs && i < j);
  return xFirst ? [x, y] : [y, x];
}

function findDuplicates(ops: readonly HistoryOp[], ns: string, idx: number[], out: Violations) {
  const sorted = idx.slice().sort((i, j) => {
    const x = (ops[i] as HistoryOp).first as bigint;
    const y = (ops[j] as HistoryOp).first as bigint;
    return x < y ? -1 : x > y ? 1 : i - j;
  });
  let cover = sorted[0] as number;
  let coverLast = lastId(ops[cover] as HistoryOp);
  for (let k = 1; k < sorted.length; k++) {
    const i = sorted[k] as number;
    const op = ops[i] as HistoryOp;
    const last = lastId(op);
    if ((op.first as bigint) <= coverLast) {
      const holder = cover;
      const shared = formatRange(op.first as bigint, last < coverLast ? last : coverLast);
      out.add(() => {
        const [a, b] = earlierFirst(ops, holder, i);
        const ids = shared.includes('..') ? `IDs ${shared}` : `ID ${shared}`;
        const message = `namespace ${JSON.stringify(ns)}: ${ids} acknowledged twice: to ${describe(a)} and to ${describe(b)}`;
        return { kind: 'duplicate', message, a, b };
      });
    }
    if (last > coverLast) {
      cover = i;
      coverLast = last;
    }
  }
}

function orderViolation(ns: string, a: HistoryOp, b: HistoryOp, high: bigint): Violation {
  const where = `namespace ${JSON.stringify(ns)}`;
  const before = `${high}, acknowledged to ${describe(a)} before it was invoked`;
  if (lastId(b) <= high) {
    const message = `${where}: the counter went back: ${describe(b)} lies at or below ${before}`;
    return { kind: 'backwards', message, a, b };
  }
  const message = `${where}: real-time order broken: ${describe(b)} is not above ${before}`;
  return { kind: 'real-time', message, a, b };
}

function findOrderViolations(
  ops: readonly HistoryOp[],
  ns: string,
  idx: number[],
  out: Violations,
) {
  const op = (i: number) => ops[i] as HistoryOp;
  const byInvoke = idx.slice().sort((i, j) => op(i).invokeMs - op(j).invokeMs || i - j);
  const byComplete = idx.slice().sort((i, j) => op(i).completeMs - op(j).completeMs || i - j);
  let c = 0;
  let high = 0n; // every acknowledged ID is >= 1
  let holder = -1;
  for (const i of byInvoke) {
    const b = op(i);
    // Everything that completed strictly before b was invoked; equal times are concurrent.
    while (c < byComplete.length && op(byComplete[c] as number).completeMs < b.invokeMs) {
      const j = byComplete[c++] as number;
      const last = lastId(op(j));
      if (last > high) {
        high = last;
        holder = j;
      }
    }
    if (holder >= 0 && (b.first as bigint) <= high) {
      const [a, h] = [op(holder), high];
      out.add(() => orderViolation(ns, a, b, h));
    }
  }
}

/** Checks a history; see the module comment for what is checked and how pairs are named. */
export function checkHistory(ops: readonly HistoryOp[], opts: CheckOptions = {}): CheckReport {
  const violations = new Violations(opts.maxViolations ?? violationsMaxDefault);
  const acked = new Map<string, number[]>(); // namespace → positions of its ok operations
  const namespaces = new Set<string>();
  const counts = { acknowledged: 0, failed: 0, unknown: 0 };
  let acknowledgedIds = 0n;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as HistoryOp;
    const why = malformedReason(op);
    if (why !== null) {
      const message = `operation ${i + 1} is malformed: ${why}`;
      violations.add(() => ({ kind: 'malformed', message, a: op }));
      continue;
    }
    namespaces.add(op.ns);
    if (op.outcome === 'fail') counts.failed++;
    if (op.outcome === 'unknown') counts.unknown++;
    if (op.outcome !== 'ok') continue;
    counts.acknowledged++;
    acknowledgedIds += BigInt(op.count);
    const list = acked.get(op.ns);
    if (list === undefined) acked.set(op.ns, [i]);
    else list.push(i);
  }
  for (const ns of [...acked.keys()].sort()) {
    const idx = acked.get(ns) as number[];
    findDuplicates(ops, ns, idx, violations);
    findOrderViolations(ops, ns, idx, violations);
  }
  return {
    ok: violations.total === 0,
    operations: ops.length,
    ...counts,
    acknowledgedIds,
    namespaces: namespaces.size,
    violations: violations.kept,
    violationsTotal: violations.total,
  };
}
