/**
 * A history of allocations as the clients saw them, and a checker for the invariants:
 *   1. unique: no ID acknowledged twice (per namespace);
 *   3. monotonic in real time: if A completed before B was invoked, B's IDs are above A's;
 *   4. never backwards: follows from 3 across restarts, and is checked against the node's own
 *      reported counter after each restart (see checkRecoveredCounter).
 * Time is a logical clock ticked at every invoke and completion in the client process, so
 * "completed before invoked" is exact, not a wall-clock guess.
 */
export interface Operation {
  namespace: string;
  invokedAt: number;
  completedAt: number;
  /** Present only for acknowledged allocations. */
  first?: number;
  count?: number;
  /** Which node (or client) the operation went to, when a test cares. */
  tag?: string;
}

export class History {
  private tick = 0;
  readonly ops: Operation[] = [];

  invoke(namespace: string, tag?: string): Operation {
    const op: Operation = { namespace, invokedAt: ++this.tick, completedAt: Infinity, tag };
    this.ops.push(op);
    return op;
  }

  /** A point on the same logical clock (e.g. "promotion returned"). */
  mark(): number {
    return ++this.tick;
  }

  ack(op: Operation, first: number, count: number): void {
    op.completedAt = ++this.tick;
    op.first = first;
    op.count = count;
  }

  fail(op: Operation): void {
    op.completedAt = ++this.tick;
  }

  acked(): Operation[] {
    return this.ops.filter((op) => op.first !== undefined);
  }

  /** Highest acknowledged ID per namespace. */
  highestAcked(): Map<string, number> {
    const out = new Map<string, number>();
    for (const op of this.acked()) {
      const last = (op.first as number) + (op.count as number) - 1;
      if (last > (out.get(op.namespace) ?? 0)) out.set(op.namespace, last);
    }
    return out;
  }
}

function byNamespace(ops: Operation[]): Map<string, Operation[]> {
  const out = new Map<string, Operation[]>();
  for (const op of ops) {
    const list = out.get(op.namespace) ?? [];
    list.push(op);
    out.set(op.namespace, list);
  }
  return out;
}

/** Returns a list of violations (empty when the history is valid). */
export function checkHistory(ops: Operation[]): string[] {
  const violations: string[] = [];
  const acked = ops.filter((op) => op.first !== undefined);
  for (const [ns, list] of byNamespace(acked)) {
    const sorted = [...list].sort((a, b) => (a.first as number) - (b.first as number));
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1] as Operation;
      const cur = sorted[i] as Operation;
      const prevLast = (prev.first as number) + (prev.count as number) - 1;
      if ((cur.first as number) <= prevLast) {
        violations.push(
          `unique: ${ns} IDs ${cur.first}.. acknowledged twice (overlaps ${prev.first}..${prevLast})`,
        );
      }
    }
    // Real time: walk invocations in order, tracking the highest ID among operations that
    // completed before each invocation.
    const completions = [...list].sort((a, b) => a.completedAt - b.completedAt);
    const invocations = [...list].sort((a, b) => a.invokedAt - b.invokedAt);
    let c = 0;
    let highestDone = 0;
    for (const op of invocations) {
      while (c < completions.length && (completions[c] as Operation).completedAt < op.invokedAt) {
        const done = completions[c] as Operation;
        highestDone = Math.max(highestDone, (done.first as number) + (done.count as number) - 1);
        c++;
      }
      if ((op.first as number) <= highestDone) {
        violations.push(
          `monotonic: ${ns} got ${op.first} after ${highestDone} had already been acknowledged`,
        );
      }
    }
  }
  return violations;
}
