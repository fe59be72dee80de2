/**
 * One operation of a history as a client saw it, and what makes one well-formed. Shared by
 * the checker (history.ts) and the file format (history-file.ts); see history.ts for the
 * semantics and docs/history-format.md for the file.
 */

export type Outcome = 'ok' | 'fail' | 'unknown';

export const outcomes: readonly Outcome[] = ['ok', 'fail', 'unknown'];

export interface HistoryOp {
  ns: string;
  /** The first ID of the acknowledged range; null when the operation was not acknowledged. */
  first: bigint | null;
  /** IDs acknowledged (ok), or asked for (fail / unknown). */
  count: number;
  invokeMs: number;
  completeMs: number;
  outcome: Outcome;
}

/** The last ID of an acknowledged range (the caller has checked first is set). */
export function lastId(op: HistoryOp): bigint {
  return (op.first as bigint) + BigInt(op.count) - 1n;
}

/** `12` or `12..15`. */
export function formatRange(first: bigint, last: bigint): string {
  return first === last ? `${first}` : `${first}..${last}`;
}

function outcomeReason(op: HistoryOp): string | null {
  if (!outcomes.includes(op.outcome)) {
    return `outcome must be "ok", "fail" or "unknown" (got ${JSON.stringify(op.outcome)})`;
  }
  if (op.first !== null && typeof op.first !== 'bigint') return 'first must be a bigint or null';
  if (op.outcome === 'ok') {
    if (op.first === null) return 'an ok operation needs first (the first ID it was given)';
    if (op.first < 1n) return `first must be >= 1 for an ok operation (got ${op.first})`;
  }
  return null;
}

/** Why `op` cannot be checked, or null when it is well-formed. */
export function malformedReason(op: HistoryOp): string | null {
  if (typeof op.ns !== 'string' || op.ns === '') return 'ns must be a non-empty string';
  const outcome = outcomeReason(op);
  if (outcome !== null) return outcome;
  if (!Number.isSafeInteger(op.count) || op.count < 1) {
    return `count must be an integer >= 1 (got ${String(op.count)})`;
  }
  for (const field of ['invokeMs', 'completeMs'] as const) {
    if (typeof op[field] !== 'number' || !Number.isFinite(op[field])) {
      return `${field} must be a finite number (got ${String(op[field])})`;
    }
  }
  if (op.completeMs < op.invokeMs) {
    return `completeMs ${op.completeMs} is before invokeMs ${op.invokeMs}`;
  }
  return null;
}
