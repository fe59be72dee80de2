import { describe, expect, it } from 'vitest';
import { AssertionFailure } from '../core/assert';
import { StaleEpochError } from '../core/errors';
import { FaultStorage } from '../testing/fault-storage';
import { loadMeta } from './data-dir';
import { MetaStore } from './meta-store';

const dir = '/data';

async function open(storage: FaultStorage): Promise<MetaStore> {
  await storage.mkdir(dir);
  return new MetaStore(storage, dir, await loadMeta(storage, dir, 'n1', 'standby'));
}

describe('meta store (the one meta writer)', () => {
  it('a new directory gets a random 128-bit incarnation that survives restarts; a wiped one gets another', async () => {
    const storage = new FaultStorage();
    const first = await open(storage);
    expect(first.current.incarnation).toMatch(/^[0-9a-f]{32}$/);
    const again = await open(storage.crash());
    expect(again.current.incarnation).toBe(first.current.incarnation);
    const wiped = await open(new FaultStorage());
    expect(wiped.current.incarnation).not.toBe(first.current.incarnation);
  });

  it('applies updates one at a time in call order, each seeing the ones before it, durable before visible', async () => {
    const storage = new FaultStorage();
    const meta = await open(storage);
    const seen: number[] = [];
    const writes = [1, 2, 3].map((k) =>
      meta.update((m) => {
        seen.push(m.epoch);
        return { epoch: m.epoch + k };
      }),
    );
    await Promise.all(writes);
    expect(seen).toEqual([0, 1, 3]);
    expect(meta.current.epoch).toBe(6);
    const reopened = await open(storage.crash());
    expect(reopened.current.epoch).toBe(6);
  });

  it('a refusal writes nothing; a lower epoch is a bug (assertion) and writes nothing; a failed write leaves the value as it was', async () => {
    const storage = new FaultStorage();
    const meta = await open(storage);
    await meta.set({ epoch: 5, epochPrimary: 'a' });
    await expect(
      meta.update(() => {
        throw new StaleEpochError('refused');
      }),
    ).rejects.toBeInstanceOf(StaleEpochError);
    await expect(meta.set({ epoch: 4 })).rejects.toBeInstanceOf(AssertionFailure);
    storage.failOn('datasync', 'EIO', /meta\.tmp$/, 1);
    await expect(meta.set({ epoch: 6 })).rejects.toThrow(/EIO/);
    expect(meta.current.epoch).toBe(5);
    expect((await open(storage.crash())).current).toMatchObject({ epoch: 5, epochPrimary: 'a' });
    await meta.set({ epoch: 7 }); // the queue goes on after a failed step
    expect(meta.current.epoch).toBe(7);
  });
});
