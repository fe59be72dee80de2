/**
 * Virtual time for the simulator: a Clock whose time moves only when the driver steps it, and
 * whose timers run in one fixed order, so that a run of the real node, replication, controller
 * and client code replays exactly from a seed. It never reads real time.
 *
 * Order: runSoon callbacks first, in the order they were scheduled (they run before time moves,
 * as setImmediate runs before the next timers); then timers by (due time, scheduling order),
 * so timers due together run in the order they were set — a tie is never broken by chance.
 *
 * Promise jobs. The code under test continues in promise jobs (await) after a callback; those
 * must all run before the next callback, as they would in Node. step() is synchronous and runs
 * one callback; the async drivers (runUntil, advance, runUntilIdle, runUntilTrue) drain the
 * promise jobs before every step by awaiting one real setImmediate: Node empties the whole
 * microtask queue (promise jobs and nextTicks, including the ones they schedule) before it
 * reaches the check phase, however long the chain. A fixed number of `await Promise.resolve()`
 * would not: a chain deeper than the count would spill into the next step and change the order.
 * The driver's setImmediate is the only real timer in a run; anything else the code under test
 * schedules on a real timer or real I/O would interleave with it by chance — which a
 * same-seed-same-trace test then shows.
 */
import type { Clock, TimerHandle } from '../core/clock';

/** A virtual timer: its handle, and its place in the queue. */
class SimTimer implements TimerHandle {
  active = true;

  constructor(
    readonly fn: () => void,
    public dueMs: number,
    public seq: number,
    /** Set for setInterval: the period. */
    readonly intervalMs: number | null,
  ) {}

  unref(): this {
    return this;
  }
}

/** Unix time at monotonic 0: readings look like a real clock's. */
const unixAtZeroMs = 1_700_000_000_000;

/** Node's rule: a delay below 1 ms (or not a number) is 1 ms. */
function delayOf(ms: number): number {
  return ms >= 1 ? ms : 1;
}

function before(a: SimTimer, b: SimTimer): boolean {
  return a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.seq < b.seq);
}

/** Node's own setImmediate, taken at load: a test's fake timers must not stop the driver. */
const realSetImmediate = setImmediate;

/** Lets every promise job of the code under test run (see the header). */
function drainPromiseJobs(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}

export class SimClock implements Clock {
  private nowMs: number;
  private seq = 0;
  /** A binary min-heap of timers by (dueMs, seq); cleared ones stay until they surface. */
  private readonly heap: SimTimer[] = [];
  private activeTimers = 0;
  private soon: Array<() => void> = [];
  private soonHead = 0;
  /**
   * Called by the async drivers whenever the promise jobs have drained: before each step and
   * once they stop. The place to check invariants or record a trace between callbacks.
   */
  afterEachStep: (() => void) | null = null;

  /** startMs: the monotonic reading at the start (not 0: code uses 0 for "never"). */
  constructor(startMs = 1_000_000) {
    this.nowMs = startMs;
  }

  nowUnixMs(): number {
    return unixAtZeroMs + this.nowMs;
  }

  monotonicMs(): number {
    return this.nowMs;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.schedule(fn, ms, null);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.schedule(fn, ms, delayOf(ms));
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle === undefined) return;
    if (!(handle instanceof SimTimer)) {
      throw new TypeError('sim-clock: clearing a timer this clock did not set (a real timer?)');
    }
    if (!handle.active) return;
    handle.active = false;
    this.activeTimers--;
    // Cleared timers leave the heap when they reach its top; many cleared at once (a timer
    // re-armed per call) are swept out so the heap stays about as large as what is pending.
    if (this.heap.length > 1024 && this.heap.length > 4 * this.activeTimers) this.sweep();
  }

  clearInterval(handle: TimerHandle | undefined): void {
    this.clearTimeout(handle);
  }

  runSoon(fn: () => void): void {
    this.soon.push(fn);
  }

  /** Timers set and not yet run or cleared (an interval counts until cleared), and runSoon ones. */
  get pendingTimers(): number {
    return this.activeTimers + this.soon.length - this.soonHead;
  }

  /** Virtual time of the next callback (now for a runSoon one); null when nothing is scheduled. */
  nextDueMs(): number | null {
    if (this.soonHead < this.soon.length) return this.nowMs;
    const t = this.peek();
    return t === null ? null : t.dueMs;
  }

  /**
   * Runs the earliest due callback (runSoon ones first, then timers by (due, scheduling
   * order)), moving virtual time to it; false when nothing is scheduled. A callback that throws
   * throws out of step(), as an uncaught exception ends a process.
   */
  step(): boolean {
    if (this.soonHead < this.soon.length) {
      const fn = this.soon[this.soonHead++] as () => void;
      if (this.soonHead === this.soon.length) {
        this.soon = [];
        this.soonHead = 0;
      }
      fn();
      return true;
    }
    const t = this.peek();
    if (t === null) return false;
    this.pop();
    this.nowMs = Math.max(this.nowMs, t.dueMs);
    if (t.intervalMs === null) {
      t.active = false;
      this.activeTimers--;
    } else {
      t.dueMs = this.nowMs + t.intervalMs;
      t.seq = this.seq++;
      this.push(t);
    }
    t.fn();
    return true;
  }

  /**
   * Steps, draining promise jobs before each step, until no callback is due at or before atMs;
   * then virtual time is atMs (if it was not already later).
   */
  async runUntil(atMs: number): Promise<void> {
    for (;;) {
      await this.drain();
      const due = this.nextDueMs();
      if (due === null || due > atMs) break;
      this.step();
    }
    this.nowMs = Math.max(this.nowMs, atMs);
    await this.drain();
  }

  advance(ms: number): Promise<void> {
    return this.runUntil(this.nowMs + ms);
  }

  /**
   * Steps until nothing is scheduled; returns the steps taken. Throws after `stepsMax` steps:
   * an interval timer never lets a clock go idle (use runUntil or runUntilTrue then).
   */
  async runUntilIdle(stepsMax = 100_000): Promise<number> {
    for (let steps = 0; ; steps++) {
      await this.drain();
      if (this.nextDueMs() === null) return steps;
      if (steps >= stepsMax) {
        throw new Error(
          `sim-clock: still ${this.pendingTimers} timers pending after ${stepsMax} steps (an interval?)`,
        );
      }
      this.step();
    }
  }

  /**
   * Steps until `condition` holds (checked after promise jobs drain, before each step) or
   * virtual time would pass now + withinMs; true when it held.
   */
  async runUntilTrue(condition: () => boolean, withinMs: number): Promise<boolean> {
    const limitMs = this.nowMs + withinMs;
    for (;;) {
      await this.drain();
      if (condition()) return true;
      const due = this.nextDueMs();
      if (due === null || due > limitMs) break;
      this.step();
    }
    this.nowMs = Math.max(this.nowMs, limitMs);
    await this.drain();
    return condition();
  }

  /**
   * Steps until `promise` settles, then returns its value or throws its error; throws when it
   * has not settled once virtual time would pass now + withinMs.
   */
  async runUntilSettled<T>(promise: Promise<T>, withinMs: number): Promise<T> {
    let outcome: { value: T } | { error: unknown } | null = null;
    promise.then(
      (value) => (outcome = { value }),
      (error: unknown) => (outcome = { error }),
    );
    if (!(await this.runUntilTrue(() => outcome !== null, withinMs))) {
      throw new Error(`sim-clock: not settled within ${withinMs} ms of virtual time`);
    }
    const done = outcome as unknown as { value: T } | { error: unknown };
    if ('error' in done) throw done.error;
    return done.value;
  }

  private async drain(): Promise<void> {
    await drainPromiseJobs();
    this.afterEachStep?.();
  }

  private schedule(fn: () => void, ms: number, intervalMs: number | null): SimTimer {
    const t = new SimTimer(fn, this.nowMs + delayOf(ms), this.seq++, intervalMs);
    this.activeTimers++;
    this.push(t);
    return t;
  }

  /** Keeps only active timers; a sorted array is a valid heap. */
  private sweep(): void {
    const live = this.heap.filter((t) => t.active).sort((a, b) => (before(a, b) ? -1 : 1));
    this.heap.length = 0;
    this.heap.push(...live);
  }

  /** The earliest active timer (cleared ones on top are dropped here), or null. */
  private peek(): SimTimer | null {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined) return null;
      if (top.active) return top;
      this.pop();
    }
  }

  private push(t: SimTimer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(t, h[parent] as SimTimer)) break;
      h[i] = h[parent] as SimTimer;
      i = parent;
    }
    h[i] = t;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop() as SimTimer;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= h.length) break;
      const right = left + 1;
      const child =
        right < h.length && before(h[right] as SimTimer, h[left] as SimTimer) ? right : left;
      if (!before(h[child] as SimTimer, last)) break;
      h[i] = h[child] as SimTimer;
      i = child;
    }
    h[i] = last;
  }
}
