import type { Clock } from '../core/clock';

/** A clock that moves only when told to: backoffs and deadlines without sleeping. */
export class FakeClock implements Clock {
  private ms = 1_000_000;

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
