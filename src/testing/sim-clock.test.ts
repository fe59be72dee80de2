import { afterEach, describe, expect, it, vi } from 'vitest';
import { sleep, systemClock } from '../core/clock';
import { SimClock } from './sim-clock';
import { seededRandom } from './random';

describe('SimClock', () => {
  afterEach(() => vi.restoreAllMocks());

  it('runs timers by due time, ties in the order they were set, runSoon ones before any', () => {
    const clock = new SimClock(0);
    const ran: string[] = [];
    clock.setTimeout(() => ran.push(`b@${clock.monotonicMs()}`), 20);
    clock.setTimeout(() => ran.push(`a@${clock.monotonicMs()}`), 10);
    clock.setTimeout(() => ran.push(`c@${clock.monotonicMs()}`), 20);
    clock.runSoon(() => ran.push(`soon@${clock.monotonicMs()}`));
    while (clock.step());
    expect(ran).toEqual(['soon@0', 'a@10', 'b@20', 'c@20']);
    expect(clock.step()).toBe(false);
  });

  it('a runSoon callback set by a timer runs before the next timer, at the same time', () => {
    const clock = new SimClock(0);
    const ran: string[] = [];
    clock.setTimeout(() => {
      ran.push('t1');
      clock.runSoon(() => ran.push(`soon@${clock.monotonicMs()}`));
    }, 5);
    clock.setTimeout(() => ran.push('t2'), 5);
    while (clock.step());
    expect(ran).toEqual(['t1', 'soon@5', 't2']);
  });

  it('cleared timers never run; intervals repeat until cleared; pendingTimers counts both', async () => {
    const clock = new SimClock(0);
    let ticks = 0;
    const interval = clock.setInterval(() => ticks++, 10);
    const never = clock.setTimeout(() => expect.fail('cleared timer ran'), 15);
    clock.setTimeout(() => undefined, 25);
    expect(clock.pendingTimers).toBe(3);
    clock.clearTimeout(never);
    clock.clearTimeout(never); // twice is harmless, as in Node
    expect(clock.pendingTimers).toBe(2);
    await clock.runUntil(35);
    expect(ticks).toBe(3);
    expect(clock.monotonicMs()).toBe(35);
    expect(clock.pendingTimers).toBe(1);
    clock.clearInterval(interval);
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(100);
    expect(ticks).toBe(3);
  });

  it('treats a delay below 1 ms as 1 ms, as Node does', () => {
    const clock = new SimClock(0);
    clock.setTimeout(() => undefined, 0);
    clock.setTimeout(() => undefined, Number.NaN);
    expect(clock.nextDueMs()).toBe(1);
    clock.step();
    clock.step();
    expect(clock.monotonicMs()).toBe(1);
  });

  it('lets the promise jobs of one callback finish before the next callback runs', async () => {
    const clock = new SimClock(0);
    const ran: string[] = [];
    clock.setTimeout(() => {
      ran.push('a');
      void (async () => {
        for (let i = 0; i < 200; i++) await Promise.resolve();
        ran.push('a continued');
      })();
    }, 10);
    clock.setTimeout(() => ran.push('b'), 10);
    await clock.runUntil(10);
    expect(ran).toEqual(['a', 'a continued', 'b']);
  });

  it('sleep() on the clock resumes at the virtual time, without real waiting', async () => {
    const clock = new SimClock(0);
    let woke = -1;
    void sleep(clock, 3_600_000).then(() => (woke = clock.monotonicMs()));
    await clock.runUntil(3_600_000);
    expect(woke).toBe(3_600_000);
  });

  it('never reads the real clock', async () => {
    const clock = new SimClock();
    const real = vi.fn(() => {
      throw new Error('real clock read');
    });
    vi.spyOn(Date, 'now').mockImplementation(real);
    vi.spyOn(performance, 'now').mockImplementation(real);
    clock.setInterval(() => clock.nowUnixMs() + clock.monotonicMs(), 7);
    await clock.advance(1000);
    vi.restoreAllMocks();
    expect(real).not.toHaveBeenCalled();
    expect(clock.nowUnixMs()).toBe(1_700_000_000_000 + 1_001_000);
  });

  it('runUntilIdle stops when nothing is left and refuses to spin on an interval', async () => {
    const clock = new SimClock(0);
    clock.setTimeout(() => clock.setTimeout(() => undefined, 5), 5);
    expect(await clock.runUntilIdle()).toBe(2);
    expect(clock.monotonicMs()).toBe(10);
    clock.setInterval(() => undefined, 1);
    await expect(clock.runUntilIdle(50)).rejects.toThrow(/after 50 steps/);
  });

  it('runUntilTrue stops at the step that makes the condition hold, or at the limit', async () => {
    const clock = new SimClock(0);
    let n = 0;
    clock.setInterval(() => n++, 10);
    expect(await clock.runUntilTrue(() => n === 3, 1000)).toBe(true);
    expect(clock.monotonicMs()).toBe(30);
    expect(await clock.runUntilTrue(() => n === -1, 45)).toBe(false);
    expect(clock.monotonicMs()).toBe(75);
    expect(n).toBe(7);
  });

  it('runUntilSettled returns what the promise resolves to, its error, or gives up at the limit', async () => {
    const clock = new SimClock(0);
    await expect(
      clock.runUntilSettled(
        sleep(clock, 500).then(() => 'woke'),
        1000,
      ),
    ).resolves.toBe('woke');
    const failing = sleep(clock, 10).then(() => Promise.reject(new Error('boom')));
    await expect(clock.runUntilSettled(failing, 1000)).rejects.toThrow('boom');
    await expect(clock.runUntilSettled(sleep(clock, 5000), 1000)).rejects.toThrow(/not settled/);
  });

  it('calls afterEachStep once the promise jobs of each step have run', async () => {
    const clock = new SimClock(0);
    let value = 0;
    const seen: number[] = [];
    clock.afterEachStep = () => seen.push(value);
    clock.setTimeout(() => void Promise.resolve().then(() => (value = 1)), 10);
    clock.setTimeout(() => void Promise.resolve().then(() => (value = 2)), 20);
    await clock.runUntil(20);
    expect(seen).toEqual([0, 1, 2, 2]);
  });

  it('refuses to clear a timer it did not set', () => {
    const clock = new SimClock();
    const real = systemClock.setTimeout(() => undefined, 1);
    systemClock.clearTimeout(real);
    expect(() => clock.clearTimeout(real)).toThrow(/did not set/);
  });

  it('keeps order across many timers set and cleared (the heap, swept)', () => {
    const clock = new SimClock(0);
    const random = seededRandom(1);
    const expected: Array<[number, number]> = [];
    const ran: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const due = Math.floor(random.next() * 100);
      const h = clock.setTimeout(() => ran.push(i), due);
      if (random.next() < 0.8) clock.clearTimeout(h);
      else expected.push([Math.max(1, due), i]);
    }
    while (clock.step());
    expected.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    expect(ran).toEqual(expected.map(([, i]) => i));
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('seededRandom', () => {
  it('is a Random and a function, and a seed replays the same numbers', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const fromA = [a.next(), a(), a.next()];
    expect([b(), b.next(), b()]).toEqual(fromA);
    for (const x of fromA) expect(x >= 0 && x < 1).toBe(true);
  });
});
