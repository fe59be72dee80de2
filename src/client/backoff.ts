/**
 * Retry pacing: "full jitter" exponential backoff. The n-th retry of a request waits a uniform
 * random time in [0, min(retryBackoffMaxMs, retryBackoffMinMs * 2^n)), so that the requests a
 * failed stream drops at once spread out instead of hitting the next node together.
 */
import { systemRandom } from '../core/clock';

/** The cap of the first retry's wait. */
export const retryBackoffMinMs = 25;
/** The cap of every later retry's wait: a recovered or promoted node is found within about this. */
export const retryBackoffMaxMs = 1000;

export interface BackoffOptions {
  minMs: number;
  maxMs: number;
  /**
   * The jitter, uniform in [0, 1): systemRandom's, or a seeded source in tests and the
   * simulator (a function, as this public option always was; seededRandom is one).
   */
  random: () => number;
}

export const defaultBackoff: BackoffOptions = {
  minMs: retryBackoffMinMs,
  maxMs: retryBackoffMaxMs,
  random: () => systemRandom.next(),
};

/** How long to wait before retry number `retry` (0 for the first). */
export function backoffDelayMs(retry: number, opts: BackoffOptions): number {
  // 2^retry overflows to Infinity for large retry counts; min() keeps the cap.
  const capMs = Math.min(opts.maxMs, opts.minMs * 2 ** retry);
  return Math.floor(opts.random() * capMs);
}

/**
 * The wait before retry number `retry` of a request with `remainingMs` left before its
 * deadline, or null when the retry could not start before the deadline: the caller gives up
 * now rather than sleep into a deadline it already knows it will miss.
 */
export function retryDelayMs(
  retry: number,
  remainingMs: number,
  opts: BackoffOptions,
): number | null {
  const delayMs = backoffDelayMs(retry, opts);
  return delayMs < remainingMs ? delayMs : null;
}
