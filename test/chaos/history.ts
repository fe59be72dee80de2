/**
 * A history of allocations as the chaos tests' clients saw them: a recorder on a logical clock
 * ticked at every invoke and completion in the client process, so "completed before invoked"
 * is exact, not a wall-clock guess. The checking is src/check/history.ts (the same checker as
 * `tally check-history` and the chaos runner); invariant 4 is also checked against the node's
 * own reported counters after restarts and failovers (see highestAcked).
 */
import { checkHistory, type HistoryOp } from '../../src/check/history';

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

  /** No reply, or an error: the allocation may or may not have happened. */
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

  /**
   * The operations in the checker's form. A failed call counts as `unknown`: the chaos clients
   * see a node killed or cut off mid-call, where a request may have allocated before the reply
   * was lost. One still pending completes now. The count asked for is not recorded: 1.
   */
  toHistoryOps(): HistoryOp[] {
    const now = this.mark();
    return this.ops.map((op) => ({
      ns: op.namespace,
      first: op.first === undefined ? null : BigInt(op.first),
      count: op.count ?? 1,
      invokeMs: op.invokedAt,
      completeMs: op.completedAt === Infinity ? now : op.completedAt,
      outcome: op.first === undefined ? 'unknown' : 'ok',
    }));
  }

  /** The checker's violations as `kind: message` lines; empty when the history is valid. */
  violations(): string[] {
    return checkHistory(this.toHistoryOps()).violations.map((v) => `${v.kind}: ${v.message}`);
  }
}
