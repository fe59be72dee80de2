/**
 * The counter state machine: one counter per namespace. Two values per counter:
 *   - reserved: the highest ID handed to a batch that is being written (in memory only);
 *   - durable:  the highest ID in a record that is on disk (what replay rebuilds).
 * A reservation that fails to reach the disk is a gap (never acknowledged), never a reuse:
 * `reserved` only moves forward while the process lives.
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

  constructor(private readonly namespacesLimit = namespacesMax) {}

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
      counter = { reserved: 0, durable: 0 };
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
      counter = { reserved: 0, durable: 0 };
      this.counters.set(namespace, counter);
    }
    const last = first + count - 1;
    if (last > counter.durable) counter.durable = last;
    if (last > counter.reserved) counter.reserved = last;
  }

  lastId(namespace: string): number {
    return this.counters.get(namespace)?.durable ?? 0;
  }

  /** Durable values, sorted by name: what a snapshot stores and Status shows. */
  durableEntries(): Array<[string, number]> {
    const out: Array<[string, number]> = [];
    for (const [name, c] of this.counters) if (c.durable > 0) out.push([name, c.durable]);
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  load(entries: Array<[string, number]>): void {
    for (const [name, lastId] of entries) {
      assert(
        typeof name === 'string' && Number.isSafeInteger(lastId) && lastId >= 0,
        'snapshot entry valid',
      );
      this.counters.set(name, { reserved: lastId, durable: lastId });
    }
  }
}
