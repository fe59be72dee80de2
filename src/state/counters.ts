/**
 * The counter state machine: one counter per namespace. Two values per counter:
 *   - reserved: the highest ID handed to a batch that is being written (in memory only);
 *   - durable:  the highest ID in a record that is on disk (what replay rebuilds).
 * A reservation that fails to reach the disk is a gap (never acknowledged), never a reuse:
 * `reserved` only moves forward while the process lives.
 *
 * A namespace not seen yet starts at the floor (0 unless a forced promotion skipped ahead):
 * its first ID is floor + 1.
 */
import { assert } from '../core/assert';
import { CounterExhaustedError, InvalidArgumentError, OverloadedError } from '../core/errors';
import {
  countMax,
  idMax,
  namespaceLengthMax,
  namespacePattern,
  namespacesMax,
} from '../core/limits';

interface Counter {
  reserved: number;
  durable: number;
}

/** Throws InvalidArgumentError unless namespace and count are acceptable. Cheap: per request. */
export function validateAllocation(namespace: unknown, count: unknown): void {
  if (typeof namespace !== 'string' || !namespacePattern.test(namespace)) {
    const shown =
      typeof namespace === 'string' ? JSON.stringify(namespace.slice(0, 80)) : typeof namespace;
    throw new InvalidArgumentError(
      `state: invalid namespace ${shown}: need 1-${namespaceLengthMax} characters of [a-z0-9._-]`,
    );
  }
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > countMax) {
    throw new InvalidArgumentError(`state: invalid count ${String(count)}: need 1..${countMax}`);
  }
}

export class CounterState {
  private readonly counters = new Map<string, Counter>();
  private floorValue = 0;

  constructor(private readonly namespacesLimit = namespacesMax) {}

  /** Namespaces not seen yet start above this ID. */
  get floor(): number {
    return this.floorValue;
  }

  /** The highest ID any counter has reserved (at least the floor). */
  highestReserved(): number {
    let highest = this.floorValue;
    for (const c of this.counters.values()) if (c.reserved > highest) highest = c.reserved;
    return highest;
  }

  /**
   * A forced promotion: every counter, and the floor new namespaces start above, go up by
   * `margin`, so nothing a lost history can have acknowledged is handed out again.
   */
  skipAhead(margin: number): void {
    assert(Number.isSafeInteger(margin) && margin >= 1, 'skipAhead: margin >= 1');
    assert(this.highestReserved() + margin <= idMax, 'skipAhead: counters stay below idMax');
    this.floorValue += margin;
    for (const c of this.counters.values()) {
      c.reserved += margin;
      c.durable += margin;
    }
  }

  get namespaceCount(): number {
    return this.counters.size;
  }

  /** Reserves IDs first..first+count-1 (input already validated). */
  reserve(namespace: string, count: number): number {
    let counter = this.counters.get(namespace);
    if (counter === undefined) {
      if (this.counters.size >= this.namespacesLimit) {
        throw new OverloadedError(
          `state: namespace limit ${this.namespacesLimit} reached; cannot create ${namespace}`,
        );
      }
      counter = { reserved: this.floorValue, durable: this.floorValue };
      this.counters.set(namespace, counter);
    }
    if (counter.reserved + count > idMax) {
      throw new CounterExhaustedError(
        `state: namespace ${namespace} would pass its maximum ID ${idMax} (at ${counter.reserved})`,
      );
    }
    const first = counter.reserved + 1;
    counter.reserved += count;
    return first;
  }

  /** Records that IDs up to first+count-1 are durable (after fsync, and during replay). */
  apply(namespace: string, first: number, count: number): void {
    assert(first >= 1 && count >= 1 && first + count - 1 <= idMax, 'apply: IDs in range');
    let counter = this.counters.get(namespace);
    if (counter === undefined) {
      counter = { reserved: this.floorValue, durable: this.floorValue };
      this.counters.set(namespace, counter);
    }
    const last = first + count - 1;
    if (last > counter.durable) counter.durable = last;
    if (last > counter.reserved) counter.reserved = last;
  }

  lastId(namespace: string): number {
    return this.counters.get(namespace)?.durable ?? this.floorValue;
  }

  /** Durable values, sorted by name: what a snapshot stores and Status shows. */
  durableEntries(): Array<[string, number]> {
    const out: Array<[string, number]> = [];
    for (const [name, c] of this.counters) if (c.durable > 0) out.push([name, c.durable]);
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  load(entries: Array<[string, number]>, floor = 0): void {
    assert(Number.isSafeInteger(floor) && floor >= 0 && floor <= idMax, 'snapshot floor valid');
    this.floorValue = floor;
    for (const [name, lastId] of entries) {
      assert(
        typeof name === 'string' && Number.isSafeInteger(lastId) && lastId >= 0,
        'snapshot entry valid',
      );
      this.counters.set(name, { reserved: lastId, durable: lastId });
    }
  }
}
