/**
 * Time and randomness behind interfaces, so that the simulator can run the real node,
 * replication, controller and client code in virtual time and replay a seed
 * (src/testing/sim-clock.ts, src/testing/random.ts). Every clock read, timer and random choice
 * in src/node, src/replication, src/controller, src/client, src/wal and src/state goes through
 * a Clock or a Random passed in (eslint.config.mjs forbids the globals there); production
 * passes systemClock and systemRandom.
 *
 * Not behind the seam, on purpose: the gRPC server and transports (src/server,
 * src/client/http2-transport.ts, grpc-transport.ts) run on real sockets, which the simulator
 * replaces with in-process fakes (src/testing/in-process-transport.ts, fault-network.ts), so
 * they keep Node's timers. Metrics durations are clock readings too (the same monotonicMs), so a simulated run
 * observes virtual durations.
 */

/** What a timer returns: Node's Timeout in production, a virtual timer in the simulator. */
export interface TimerHandle {
  /** The timer does not keep the process alive (Node's unref; a no-op in the simulator). */
  unref(): unknown;
}

export interface Clock {
  /** Wall-clock time, unix milliseconds (deadlines, timestamps). */
  nowUnixMs(): number;
  /** Monotonic milliseconds with sub-ms precision (durations). */
  monotonicMs(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
  /**
   * Runs fn after the current turn of the event loop, once the promise jobs of this turn have
   * run (setImmediate in production): the group commit gathers what arrived together this way.
   */
  runSoon(fn: () => void): void;
}

/**
 * Node's clock and timers. The methods only forward (no closure or object per call beyond what
 * Node's own timer functions make): the committer schedules through runSoon once per batch.
 */
export const systemClock: Clock = {
  nowUnixMs: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout | undefined),
  runSoon: (fn) => void setImmediate(fn),
};

/** Resolves after `ms` on `clock` (a retry's pause). */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => void clock.setTimeout(resolve, ms));
}

/** A source of uniform random numbers: Math.random in production, seeded in the simulator. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
}

export const systemRandom: Random = { next: () => Math.random() };
