/** Time behind an interface so the simulator can drive it. */
export interface Clock {
  /** Wall-clock time, unix milliseconds (deadlines, timestamps). */
  nowUnixMs(): number;
  /** Monotonic milliseconds with sub-ms precision (durations). */
  monotonicMs(): number;
}

export const systemClock: Clock = {
  nowUnixMs: () => Date.now(),
  monotonicMs: () => performance.now(),
};
