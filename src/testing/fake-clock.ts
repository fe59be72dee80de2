import { systemClock, type Clock } from '../core/clock';

/**
 * A clock whose readings move only when told to: backoffs and deadlines without sleeping.
 * Its timers are Node's (real time): for code whose timers only poll what the readings decide
 * (a sweep, a tick). For virtual timers, use SimClock.
 */
export class FakeClock implements Clock {
  private ms = 1_000_000;

  readonly setTimeout = systemClock.setTimeout;
  readonly clearTimeout = systemClock.clearTimeout;
  readonly setInterval = systemClock.setInterval;
  readonly clearInterval = systemClock.clearInterval;
  readonly runSoon = systemClock.runSoon;

  nowUnixMs(): number {
    return 1_700_000_000_000 + this.ms;
  }

  monotonicMs(): number {
    return this.ms;
  }

  advance(ms: number): void {
    this.ms += ms;
  }
}
