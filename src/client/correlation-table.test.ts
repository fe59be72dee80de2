import { describe, expect, it } from 'vitest';
import { seededRandom as rng } from '../testing/random';
import { CorrelationTable } from './correlation-table';

describe('CorrelationTable', () => {
  it('agrees with a Map through random sets, takes and misses, in colliding and sparse id ranges', () => {
    for (const [seed, spread] of [
      [1, 1],
      [2, 64], // ids that differ by multiples of the capacity: every one collides
      [3, 2 ** 33], // ids past 2^32
    ] as const) {
      const random = rng(seed);
      const table = new CorrelationTable<string>(8);
      const model = new Map<number, string>();
      let next = 1;
      for (let op = 0; op < 20_000; op++) {
        const r = random();
        if (r < 0.5 || model.size === 0) {
          const id = spread === 1 ? next++ : 1 + Math.floor(random() * 4096) * spread;
          if (model.has(id)) continue;
          table.set(id, `v${id}`);
          model.set(id, `v${id}`);
        } else if (r < 0.9) {
          const keys = [...model.keys()];
          const id = keys[Math.floor(random() * keys.length)] as number;
          expect(table.take(id)).toBe(`v${id}`);
          model.delete(id);
        } else {
          const id = 1 + Math.floor(random() * 4096) * spread;
          expect(table.get(id)).toBe(model.get(id));
          expect(table.take(id + 0.5)).toBeUndefined();
        }
        expect(table.size).toBe(model.size);
      }
      for (const [id, v] of model) expect(table.get(id)).toBe(v);
    }
  });

  it('drains in correlation id order (send order) and is empty after', () => {
    const table = new CorrelationTable<number>(8);
    const ids = [900, 3, 2 ** 40, 17, 1, 65, 129];
    for (const id of ids) table.set(id, id);
    table.take(17);
    expect(table.drain()).toEqual([1, 3, 65, 129, 900, 2 ** 40]);
    expect(table.size).toBe(0);
    expect(table.get(3)).toBeUndefined();
    table.set(3, 3);
    expect(table.take(3)).toBe(3);
  });

  it('refuses an id it cannot hold, and one already present', () => {
    const table = new CorrelationTable<number>();
    for (const bad of [0, -1, 1.5, 2 ** 53, Number.NaN]) {
      expect(() => table.set(bad, 1)).toThrow(RangeError);
    }
    table.set(7, 1);
    expect(() => table.set(7, 2)).toThrow(/already/);
    expect(table.take(7)).toBe(1);
  });
});
