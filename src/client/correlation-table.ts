/**
 * The requests written on one stream and not yet answered, by correlation id (a positive
 * integer below 2^53): an open-addressing hash table with linear probing on two flat arrays.
 *
 * Why not a Map: a Map that takes and drops an entry per request rehashes into a fresh table
 * every few dozen requests, and the old table, already promoted to the old generation, keeps
 * a link to the new one and its entries until the next full GC. At 50K allocations/s that kept
 * half of everything a call allocates alive through young-generation GCs (promise, closures,
 * the request): 4-9 ms scavenges every ~120 ms, the client library's p99. Here a delete shifts
 * the following entries back (no tombstones), so the arrays are replaced only when they grow.
 */
export class CorrelationTable<V> {
  /** 0 marks a free slot (correlation ids are ≥ 1). Float64: ids past 2^31 stay unboxed. */
  private keys: Float64Array;
  private values: (V | undefined)[];
  private mask: number;
  private count = 0;

  constructor(capacity = 64) {
    let size = 8;
    while (size < capacity) size *= 2;
    this.keys = new Float64Array(size);
    this.values = new Array<V | undefined>(size).fill(undefined);
    this.mask = size - 1;
  }

  get size(): number {
    return this.count;
  }

  get(id: number): V | undefined {
    const keys = this.keys;
    for (let i = this.slot(id); ; i = (i + 1) & this.mask) {
      const k = keys[i];
      if (k === id) return this.values[i];
      if (k === 0) return undefined;
    }
  }

  /** Adds id → value; id must be an integer in [1, 2^53) and not already present. */
  set(id: number, value: V): void {
    if (!(Number.isSafeInteger(id) && id >= 1)) {
      throw new RangeError(`correlation id must be a positive safe integer, got ${id}`);
    }
    if ((this.count + 1) * 2 > this.keys.length) this.grow();
    const keys = this.keys;
    let i = this.slot(id);
    while (keys[i] !== 0) {
      if (keys[i] === id) throw new Error(`correlation id ${id} is already in the table`);
      i = (i + 1) & this.mask;
    }
    keys[i] = id;
    this.values[i] = value;
    this.count++;
  }

  /** Removes id and returns its value (undefined when absent). */
  take(id: number): V | undefined {
    const keys = this.keys;
    const mask = this.mask;
    let i = this.slot(id);
    while (keys[i] !== id) {
      if (keys[i] === 0) return undefined;
      i = (i + 1) & mask;
    }
    const value = this.values[i];
    this.count--;
    // Backward-shift deletion: move later entries of the probe run into the hole when their
    // home slot does not lie cyclically in (hole, j].
    let hole = i;
    for (let j = (i + 1) & mask; keys[j] !== 0; j = (j + 1) & mask) {
      const home = this.slot(keys[j] as number);
      const inRange = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (inRange) continue;
      keys[hole] = keys[j] as number;
      this.values[hole] = this.values[j];
      hole = j;
    }
    keys[hole] = 0;
    this.values[hole] = undefined;
    return value;
  }

  /** Removes everything and returns the values, by correlation id ascending (send order). */
  drain(): V[] {
    const entries: [number, V][] = [];
    for (let i = 0; i < this.keys.length; i++) {
      const k = this.keys[i] as number;
      if (k !== 0) entries.push([k, this.values[i] as V]);
    }
    this.keys.fill(0);
    this.values.fill(undefined);
    this.count = 0;
    entries.sort((a, b) => a[0] - b[0]);
    return entries.map((e) => e[1]);
  }

  private slot(id: number): number {
    // Ids on a stream mostly go up by one: the low bits spread them; the high bits are folded
    // in for ids past 2^32 (x >>> 0 keeps only the low 32).
    return ((id >>> 0) ^ Math.floor(id / 4294967296)) & this.mask;
  }

  private grow(): void {
    const keys = this.keys;
    const values = this.values;
    const size = keys.length * 2;
    this.keys = new Float64Array(size);
    this.values = new Array<V | undefined>(size).fill(undefined);
    this.mask = size - 1;
    this.count = 0;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as number;
      if (k !== 0) this.set(k, values[i] as V);
    }
  }
}
