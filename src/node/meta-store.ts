/**
 * The one writer of a node's meta file. Every change (a new epoch begun or accepted, a role
 * change, the catching-up flag, the cluster id) goes through update(): one write at a time, in
 * call order, durable (temp file + fsync + rename + directory fsync) before the new value is
 * visible to anyone. The epoch never goes down: a change that would lower it is a bug.
 */
import { assert } from '../core/assert';
import { Serial } from '../core/serial';
import type { Storage } from '../wal/storage';
import { writeMeta, type Meta } from './data-dir';

export class MetaStore {
  private value: Meta;
  private readonly serial = new Serial();

  constructor(
    private readonly storage: Storage,
    private readonly dataDir: string,
    initial: Meta,
  ) {
    this.value = initial;
  }

  get current(): Readonly<Meta> {
    return this.value;
  }

  /**
   * Durably applies what `next` returns for the meta as it is once every earlier update has
   * landed (null: nothing to write). `next` may throw to refuse; nothing is written then.
   */
  update(next: (current: Readonly<Meta>) => Partial<Meta> | null): Promise<Readonly<Meta>> {
    return this.serial.run(async () => {
      const changes = next(this.value);
      if (changes === null) return this.value;
      const meta: Meta = { ...this.value, ...changes };
      assert(meta.epoch >= this.value.epoch, 'meta: the epoch never goes down');
      assert(meta.nodeId === this.value.nodeId, 'meta: the node id never changes');
      assert(meta.incarnation === this.value.incarnation, 'meta: the incarnation never changes');
      await writeMeta(this.storage, this.dataDir, meta);
      this.value = meta;
      return meta;
    });
  }

  /** update() with fixed changes. */
  set(changes: Partial<Meta>): Promise<Readonly<Meta>> {
    return this.update(() => changes);
  }
}
