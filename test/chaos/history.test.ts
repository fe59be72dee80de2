import { describe, expect, it } from 'vitest';
import { History } from './history';

function record(h: History, ns: string, first: number, count: number): void {
  h.ack(h.invoke(ns), first, count);
}

describe('history recorder', () => {
  it('accepts a valid history with concurrency, gaps and failures', () => {
    const h = new History();
    const a = h.invoke('x');
    const b = h.invoke('x'); // concurrent with a: any order is fine
    h.ack(b, 1, 2);
    h.ack(a, 3, 1);
    h.fail(h.invoke('x'));
    record(h, 'x', 10, 5); // gap after a failure is allowed
    record(h, 'y', 1, 1);
    expect(h.violations()).toEqual([]);
  });

  it('hands the checker its logical times, failed and pending calls as unknown', () => {
    const h = new History();
    record(h, 'x', 1, 2);
    h.fail(h.invoke('x'));
    h.invoke('y'); // still pending
    expect(h.toHistoryOps()).toEqual([
      { ns: 'x', first: 1n, count: 2, invokeMs: 1, completeMs: 2, outcome: 'ok' },
      { ns: 'x', first: null, count: 1, invokeMs: 3, completeMs: 4, outcome: 'unknown' },
      { ns: 'y', first: null, count: 1, invokeMs: 5, completeMs: 6, outcome: 'unknown' },
    ]);
  });

  it('reports an ID acknowledged twice', () => {
    const h = new History();
    record(h, 'x', 1, 5);
    const c = h.invoke('x');
    const d = h.invoke('x');
    h.ack(c, 6, 1);
    h.ack(d, 5, 1);
    expect(h.violations()).toEqual([
      'duplicate: namespace "x": ID 5 acknowledged twice: to 1..5 (invoked at 1, completed at 2) and to 5 (invoked at 4, completed at 6)',
      'backwards: namespace "x": the counter went back: 5 (invoked at 4, completed at 6) lies at or below 5, acknowledged to 1..5 (invoked at 1, completed at 2) before it was invoked',
    ]);
  });

  it('reports an allocation below one that completed before it was invoked', () => {
    const h = new History();
    record(h, 'x', 10, 1);
    record(h, 'x', 7, 1); // e.g. a counter that went backwards after a restart
    expect(h.violations().join()).toMatch(/^backwards: namespace "x": the counter went back: 7 /);
  });

  it('keeps namespaces independent', () => {
    const h = new History();
    record(h, 'x', 10, 1);
    record(h, 'y', 1, 1);
    expect(h.violations()).toEqual([]);
  });
});
