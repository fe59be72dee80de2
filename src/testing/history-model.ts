/**
 * Valid histories from a model counter, for the checker's tests and its scale script
 * (scripts/check-history-scale.mjs). Each operation takes effect at one instant between its
 * invocation and its completion, and takes its IDs from its namespace's counter at that
 * instant: so whenever A completed before B was invoked, A's IDs are below B's — the history
 * keeps every invariant by construction, with real concurrency (overlapping operations,
 * equal times), gaps (unknown operations that took IDs nobody saw) and failures.
 */
import type { HistoryOp } from '../check/history-op';

export interface ModelOptions {
  operations: number;
  namespaces: number;
  /** The first ID handed out in every namespace (past 2^53 to test bigint IDs). */
  startId?: bigint;
  /** Largest count asked for. */
  countMax?: number;
}

/** When the operation took effect, kept beside it until its range is assigned. */
interface Pending {
  op: HistoryOp;
  effectMs: number;
}

function pendingOp(rand: () => number, options: ModelOptions, invokeMs: number): Pending {
  const ns = `ns${Math.floor(rand() * options.namespaces)}`;
  const count = 1 + Math.floor(rand() * (options.countMax ?? 4));
  // Integer times, often equal: ties between operations are common, as on a coarse clock.
  const effectMs = invokeMs + Math.floor(rand() * 6);
  const completeMs = effectMs + Math.floor(rand() * 6);
  const roll = rand();
  const outcome = roll < 0.04 ? 'unknown' : roll < 0.07 ? 'fail' : 'ok';
  return { op: { ns, first: null, count, invokeMs, completeMs, outcome }, effectMs };
}

/** A valid history of `operations` operations in invocation order. */
export function modelHistory(rand: () => number, options: ModelOptions): HistoryOp[] {
  const pending: Pending[] = [];
  let nowMs = 0;
  for (let i = 0; i < options.operations; i++) {
    nowMs += Math.floor(rand() * 2); // half the invocations share a time with the one before
    pending.push(pendingOp(rand, options, nowMs));
  }
  // Hand out IDs in the order the operations took effect (ties in the order invoked).
  const byEffect = pending.slice().sort((x, y) => x.effectMs - y.effectMs);
  const counters = new Map<string, bigint>();
  for (const { op } of byEffect) {
    const next = counters.get(op.ns) ?? options.startId ?? 1n;
    if (op.outcome === 'fail') continue; // refused before it took any ID
    // An unknown operation may or may not have taken its IDs: half of them leave a gap.
    if (op.outcome === 'unknown' && rand() < 0.5) continue;
    if (op.outcome === 'ok') op.first = next;
    counters.set(op.ns, next + BigInt(op.count));
  }
  return pending.map((p) => p.op);
}
