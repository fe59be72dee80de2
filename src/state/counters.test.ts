import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../core/errors';
import { CounterState, validateAllocation } from './counters';

describe('counter state', () => {
  it('reservations move ahead of durable values; only apply() makes them visible', () => {
    const state = new CounterState();
    expect(state.reserve('a', 3)).toBe(1);
    expect(state.reserve('a', 2)).toBe(4);
    expect(state.lastId('a')).toBe(0);
    state.apply('a', 1, 3);
    expect(state.lastId('a')).toBe(3);
    expect(state.durableEntries()).toEqual([['a', 3]]);
  });

  it('a failed reservation leaves a gap, never a reuse', () => {
    const state = new CounterState();
    state.reserve('a', 5); // never applied: its batch failed
    expect(state.reserve('a', 1)).toBe(6);
  });

  it('replay raises both values and never lowers them', () => {
    const state = new CounterState();
    state.apply('b', 10, 5);
    state.apply('b', 3, 1);
    expect(state.lastId('b')).toBe(14);
    expect(state.reserve('b', 1)).toBe(15);
  });

  it('lists durable counters sorted by name and round-trips through load()', () => {
    const state = new CounterState();
    for (const ns of ['zeta', 'alpha', 'm.x']) state.apply(ns, 1, 2);
    const entries = state.durableEntries();
    expect(entries.map(([n]) => n)).toEqual(['alpha', 'm.x', 'zeta']);
    const copy = new CounterState();
    copy.load(entries);
    expect(copy.durableEntries()).toEqual(entries);
    expect(copy.reserve('alpha', 1)).toBe(3);
  });

  it('validates namespace and count', () => {
    expect(() => validateAllocation('ok-name_1.x', 10_000)).not.toThrow();
    for (const [ns, count] of [
      ['', 1],
      ['a'.repeat(65), 1],
      ['A', 1],
      ['a/b', 1],
      [7, 1],
      ['a', 0],
      ['a', -1],
      ['a', 10_001],
      ['a', Number.NaN],
      ['a', '3'],
    ]) {
      expect(() => validateAllocation(ns, count), `${String(ns)} ${String(count)}`).toThrow(
        InvalidArgumentError,
      );
    }
  });
});
