/**
 * STAND-IN, TO BE REPLACED: the history checker is written on its own branch (issue 13) with
 * exactly these exports; this minimal version exists only so the chaos runner's branch builds
 * and runs until that one is merged. Keep the exported names and shapes; replace the body.
 *
 * A history is one line per allocation as a client saw it:
 *   {"ns","first","count","invokeMs","completeMs","outcome"}
 * `first` a decimal string (null unless the outcome is ok), times in monotonic ms from one
 * clock, outcome ok | fail | unknown. Checked here: ranges acknowledged twice in a namespace
 * (duplicate), an allocation invoked after another completed that did not get higher IDs
 * (real-time), and lines that cannot be what a client saw (malformed).
 */

export type Outcome = 'ok' | 'fail' | 'unknown';

export interface HistoryOp {
  ns: string;
  first: bigint | null;
  count: number;
  invokeMs: number;
  completeMs: number;
  outcome: Outcome;
}

export interface Violation {
  kind: 'duplicate' | 'real-time' | 'backwards' | 'malformed';
  message: string;
  a?: HistoryOp;
  b?: HistoryOp;
}

export interface CheckReport {
  ok: boolean;
  operations: number;
  acknowledged: number;
  acknowledgedIds: bigint;
  namespaces: number;
  violations: Violation[];
}

const lastOf = (op: HistoryOp): bigint => (op.first as bigint) + BigInt(op.count) - 1n;

function malformed(op: HistoryOp): string | null {
  if (!(op.invokeMs <= op.completeMs)) return 'completes before it was invoked';
  if (!Number.isInteger(op.count) || op.count < 1) return `count ${op.count}`;
  if (op.outcome === 'ok' && (op.first === null || op.first < 1n)) return 'ok without a first ID';
  return null;
}

/** Checks a whole history; at most opts.maxViolations (default 100) violations are listed. */
export function checkHistory(
  ops: readonly HistoryOp[],
  opts: { maxViolations?: number } = {},
): CheckReport {
  const max = opts.maxViolations ?? 100;
  const violations: Violation[] = [];
  const add = (v: Violation): void => {
    if (violations.length < max) violations.push(v);
  };
  const byNs = new Map<string, HistoryOp[]>();
  let acknowledgedIds = 0n;
  for (const op of ops) {
    const why = malformed(op);
    if (why !== null) add({ kind: 'malformed', message: `check: ${op.ns}: ${why}`, a: op });
    if (why !== null || op.outcome !== 'ok') continue;
    acknowledgedIds += BigInt(op.count);
    const list = byNs.get(op.ns) ?? [];
    list.push(op);
    byNs.set(op.ns, list);
  }
  for (const [ns, list] of byNs) {
    const byFirst = [...list].sort((x, y) =>
      x.first! < y.first! ? -1 : x.first! > y.first! ? 1 : 0,
    );
    for (let i = 1; i < byFirst.length; i++) {
      const a = byFirst[i - 1] as HistoryOp;
      const b = byFirst[i] as HistoryOp;
      if (b.first! <= lastOf(a)) {
        add({ kind: 'duplicate', message: `check: ${ns}: ID ${b.first} acknowledged twice`, a, b });
      }
    }
    // Invocations in time order against the highest ID of everything completed before each.
    const done = [...list].sort((x, y) => x.completeMs - y.completeMs);
    let c = 0;
    let highest: HistoryOp | null = null;
    for (const b of [...list].sort((x, y) => x.invokeMs - y.invokeMs)) {
      for (; c < done.length && (done[c] as HistoryOp).completeMs < b.invokeMs; c++) {
        const d = done[c] as HistoryOp;
        if (highest === null || lastOf(d) > lastOf(highest)) highest = d;
      }
      if (highest !== null && b.first! <= lastOf(highest)) {
        const message = `check: ${ns}: ${b.first} acknowledged after ${lastOf(highest)} had completed`;
        add({ kind: 'real-time', message, a: highest, b });
      }
    }
  }
  const acknowledged = [...byNs.values()].reduce((n, l) => n + l.length, 0);
  return {
    ok: violations.length === 0,
    operations: ops.length,
    acknowledged,
    acknowledgedIds,
    namespaces: byNs.size,
    violations,
  };
}

/** One history line (no newline): `first` as a decimal string, or null. */
export function formatHistoryLine(op: HistoryOp): string {
  return JSON.stringify({
    ns: op.ns,
    first: op.first === null ? null : op.first.toString(),
    count: op.count,
    invokeMs: op.invokeMs,
    completeMs: op.completeMs,
    outcome: op.outcome,
  });
}
