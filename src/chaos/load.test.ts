import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { HistoryOp } from '../check/history';
import {
  ClientAbortedError,
  ClientClosedError,
  ClientDeadlineExceededError,
  ClientOverloadedError,
  ClientRequestError,
} from '../client';
import { HistoryRecorder, outcomeOf } from './load';

describe('chaos load: outcome of a failed call', () => {
  it('fail only when no attempt can have reached a node; unknown otherwise', () => {
    expect(outcomeOf(new ClientOverloadedError('full'))).toBe('fail');
    expect(outcomeOf(new ClientDeadlineExceededError('late', 0))).toBe('fail');
    expect(outcomeOf(new ClientDeadlineExceededError('late', 1))).toBe('unknown');
    const refused = new ClientRequestError(status.OUT_OF_RANGE, 'no', 'no');
    expect(outcomeOf(refused)).toBe('unknown');
    expect(outcomeOf(new ClientClosedError('closed'))).toBe('unknown');
    expect(outcomeOf(new ClientAbortedError('aborted'))).toBe('unknown');
    expect(outcomeOf(new Error('anything'))).toBe('unknown');
  });
});

describe('chaos load: history recorder', () => {
  const op = (completeMs: number, outcome: HistoryOp['outcome'], first = 1n): HistoryOp => ({
    ns: 'n',
    first: outcome === 'ok' ? first : null,
    count: 1,
    invokeMs: completeMs - 1,
    completeMs,
    outcome,
  });

  it('the longest unavailability is the longest time between two ok answers, failures in between ignored', () => {
    const lines: HistoryOp[] = [];
    const r = new HistoryRecorder((o) => lines.push(o));
    r.record(op(10, 'ok', 1n));
    r.record(op(20, 'ok', 2n));
    r.record(op(500, 'unknown'), new ClientDeadlineExceededError('late', 2));
    r.record(op(900, 'ok', 5n));
    r.record(op(950, 'ok', 6n));
    expect(r.longestGapMs).toBe(880);
    expect(r.longestGapFromMs).toBe(20);
    expect(lines).toHaveLength(5);
    expect(r.errors.get('ClientDeadlineExceededError')).toBe(1);
    expect(r.highestAcked().get('n')).toBe(6n);
  });
});
