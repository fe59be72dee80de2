/** Deadlines: one timer for every pending call's deadline, exact, in any mix of durations. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock, type Clock } from '../core/clock';
import { Deadlines } from './deadlines';

interface Call {
  id: number;
  deadlineAtMs: number;
  settled: boolean;
}

describe('Deadlines', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const setup = () => {
    const expired: number[] = [];
    const pending = new Set<Call>();
    // Readings and timers from the (faked) globals.
    const clock: Clock = { ...systemClock, monotonicMs: () => Date.now() };
    const d = new Deadlines<Call>(
      clock,
      (c) => {
        c.settled = true;
        pending.delete(c);
        expired.push(c.id);
      },
      () => pending.size,
    );
    let next = 1;
    const add = (deadlineMs: number): Call => {
      const c = { id: next++, deadlineAtMs: Date.now() + deadlineMs, settled: false };
      pending.add(c);
      d.add(c, deadlineMs);
      return c;
    };
    const settle = (c: Call, deadlineMs: number): void => {
      c.settled = true;
      pending.delete(c);
      d.settled(deadlineMs);
    };
    return { d, add, settle, expired };
  };

  it('expires each call at its own deadline, whatever the order of durations, with one timer', () => {
    const { add, expired } = setup();
    add(300);
    add(100);
    add(200);
    add(100);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(99);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual([2, 4]);
    vi.advanceTimersByTime(100);
    expect(expired).toEqual([2, 4, 3]);
    vi.advanceTimersByTime(100);
    expect(expired).toEqual([2, 4, 3, 1]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a settled call never expires; a pending one behind settled ones still does; none left: no timer', () => {
    const { add, settle, expired } = setup();
    const calls = Array.from({ length: 5000 }, () => add(1000));
    // Everything but one call in the middle settles (compaction runs on the adds meanwhile).
    calls.forEach((c, i) => i !== 2500 && settle(c, 1000));
    for (let i = 0; i < 3000; i++) settle(add(1000), 1000);
    vi.advanceTimersByTime(1000);
    expect(expired).toEqual([2501]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
