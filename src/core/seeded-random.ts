/** Seeded randomness for tests, fault injection and the chaos runner: a seed replays exactly. */
import type { Random } from './clock';

/** A seeded Random that can also be called as a function (the form older tests use). */
export interface SeededRandom extends Random {
  (): number;
}

/** mulberry32: a small seeded PRNG returning numbers in [0, 1). */
export function seededRandom(seed: number): SeededRandom {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Object.assign(next, { next });
}
