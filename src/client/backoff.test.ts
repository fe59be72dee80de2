import { describe, expect, it } from 'vitest';
import { seededRandom } from '../testing/random';
import {
  backoffDelayMs,
  defaultBackoff,
  retryBackoffMaxMs,
  retryBackoffMinMs,
  retryDelayMs,
} from './backoff';

describe('full-jitter backoff', () => {
  it('waits in [0, min(max, min * 2^retry)): the cap doubles per retry up to retryBackoffMaxMs', () => {
    const top = { ...defaultBackoff, random: () => 0.999999 };
    const bottom = { ...defaultBackoff, random: () => 0 };
    const caps = [0, 1, 2, 3, 4, 5, 6, 7, 50, 5000].map((retry) => backoffDelayMs(retry, top));
    expect(caps).toEqual([24, 49, 99, 199, 399, 799, 999, 999, 999, 999]);
    expect(retryBackoffMinMs).toBe(25);
    expect(retryBackoffMaxMs).toBe(1000);
    expect(backoffDelayMs(9, bottom)).toBe(0);
  });

  it('is spread out: many requests failing together do not retry at the same moment', () => {
    const opts = { ...defaultBackoff, random: seededRandom(7) };
    const delays = Array.from({ length: 1000 }, () => backoffDelayMs(6, opts));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(retryBackoffMaxMs);
    expect(new Set(delays).size).toBeGreaterThan(500);
  });

  it('returns null instead of a wait that reaches the deadline, so no retry starts after it', () => {
    const opts = { ...defaultBackoff, random: seededRandom(3) };
    for (let retry = 0; retry < 200; retry++) {
      const remainingMs = (retry * 37) % 1200;
      const delayMs = retryDelayMs(retry, remainingMs, opts);
      if (delayMs !== null) expect(delayMs).toBeLessThan(remainingMs);
    }
    expect(retryDelayMs(3, 0, opts)).toBeNull();
    expect(retryDelayMs(3, -5, opts)).toBeNull();
    expect(retryDelayMs(10, 500, { ...defaultBackoff, random: () => 0.6 })).toBeNull();
    expect(retryDelayMs(10, 601, { ...defaultBackoff, random: () => 0.6 })).toBe(600);
  });
});
