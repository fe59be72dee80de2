import { describe, expect, it } from 'vitest';
import { History, checkHistory } from './history';

function record(h: History, ns: string, first: number, count: number): void {
  h.ack(h.invoke(ns), first, count);
}

describe('history checker', () => {
  it('accepts a valid history with concurrency, gaps and failures', () => {
    const h = new History();
    const a = h.invoke('x');
    const b = h.invoke('x'); // concurrent with a: any order is fine
    h.ack(b, 1, 2);
    h.ack(a, 3, 1);
    h.fail(h.invoke('x'));
    record(h, 'x', 10, 5); // gap after a failure is allowed
    record(h, 'y', 1, 1);
    expect(checkHistory(h.ops)).toEqual([]);
  });

  it('reports an ID acknowledged twice', () => {
    const h = new History();
    record(h, 'x', 1, 5);
    const c = h.invoke('x');
    const d = h.invoke('x');
    h.ack(c, 6, 1);
    h.ack(d, 5, 1);
    expect(checkHistory(h.ops).join()).toMatch(/unique: x IDs 5\.\. acknowledged twice/);
  });

  it('reports an allocation below one that completed before it was invoked', () => {
    const h = new History();
    record(h, 'x', 10, 1);
    record(h, 'x', 7, 1); // e.g. a counter that went backwards after a restart
    expect(checkHistory(h.ops).join()).toMatch(/monotonic: x got 7 after 10/);
  });

  it('keeps namespaces independent', () => {
    const h = new History();
    record(h, 'x', 10, 1);
    record(h, 'y', 1, 1);
    expect(checkHistory(h.ops)).toEqual([]);
  });
});
