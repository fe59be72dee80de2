import { afterEach, describe, expect, it, vi } from 'vitest';
import { NotPrimaryError, ProtocolError } from '../core/errors';
import { refuseReplication, type Channel, type ToPrimary } from '../replication/protocol';
import { FaultNetwork } from '../testing/fault-network';
import { FaultStorage } from '../testing/fault-storage';
import { openFaultNode } from '../testing/node-harness';
import { alloc } from '../testing/node-harness';
import { Pair, primaryAddress, recordKey, walRecords } from '../testing/replication-harness';
import type { AllocateResult, CounterNode, InSyncAuthority, InSyncRequest } from './types';

/** A controller that approves at once and remembers what it was asked, in order. */
class RecordingAuthority implements InSyncAuthority {
  calls: string[] = [];
  inSync = new Set(['primary', 'standby']);

  removeFromInSync({ standbyId }: InSyncRequest): Promise<void> {
    this.calls.push(`remove ${standbyId}`);
    this.inSync.delete(standbyId);
    return Promise.resolve();
  }

  addToInSync({ standbyId }: InSyncRequest): Promise<void> {
    this.calls.push(`add ${standbyId}`);
    this.inSync.add(standbyId);
    return Promise.resolve();
  }
}

const pairs: Pair[] = [];
afterEach(async () => {
  await Promise.all(pairs.splice(0).map((p) => p.close()));
});

async function controlledPair(authority: InSyncAuthority, policy: 'degrade' | 'block' = 'degrade') {
  const pair = new Pair(11, {}, { controller: authority, degradeAfterMs: 200 });
  pairs.push(pair);
  await pair.startStandby();
  const primary = await pair.startPrimary({ standbyLossPolicy: policy });
  await vi.waitFor(() => expect(primary.status().state).toBe('serving'), { timeout: 10_000 });
  return { pair, primary };
}

function settleAll(ps: Array<Promise<AllocateResult>>) {
  return Promise.allSettled(ps).then((rs) =>
    rs.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])),
  );
}

function expectUnique(results: AllocateResult[]): void {
  const ids = results.flatMap((r) => Array.from({ length: r.count }, (_, i) => r.first + i));
  expect(new Set(ids).size).toBe(ids.length);
}

describe('failover pieces in one process (controller faked)', () => {
  it('a primary that loses its standby asks the controller to remove it and then acknowledges alone (the ordering itself: in-sync.test.ts), and asks to add it back once it has caught up', async () => {
    const authority = new RecordingAuthority();
    const { pair, primary } = await controlledPair(authority);
    const before = await Promise.all(Array.from({ length: 20 }, () => alloc(primary, 'ids', 1)));
    pair.net.partition();
    const alone = await Promise.all(Array.from({ length: 20 }, () => alloc(primary, 'ids', 1)));
    // They were acknowledged without the standby: only after the controller said so.
    expect(authority.calls).toEqual(['remove standby']);
    expect(primary.status().replication?.ackIndex).toBeLessThan(primary.status().lastIndex);
    pair.net.heal();
    await vi.waitFor(() => expect(authority.calls).toEqual(['remove standby', 'add standby']), {
      timeout: 10_000,
    });
    // Back in sync: the standby holds every record the primary acknowledged alone.
    const after = await Promise.all(Array.from({ length: 5 }, () => alloc(primary, 'ids', 1)));
    const keys = new Set((await walRecords(pair.standbyDisk)).map(recordKey));
    for (const r of (await walRecords(pair.primaryDisk)).filter((x) => x.type === 'allocate')) {
      expect(keys.has(recordKey(r)), `record ${r.index}`).toBe(true);
    }
    expectUnique([...before, ...alone, ...after]);
  });

  it('policy block: requests wait for the standby and are acknowledged once it is back; the controller is never asked', async () => {
    const authority = new RecordingAuthority();
    const { pair, primary } = await controlledPair(authority, 'block');
    pair.net.partition();
    const pending = Array.from({ length: 5 }, () => alloc(primary, 'ids', 1));
    await new Promise((r) => setTimeout(r, 600));
    expect(authority.calls).toEqual([]);
    pair.net.heal();
    expect(await settleAll(pending)).toHaveLength(5); // acknowledged once the standby is back
    expect(authority.calls).toEqual([]);
  });

  it('Status reports a promotion under way while its meta write hangs, and none once it is done (a controller rebuilding its configuration waits for it)', async () => {
    const authority = new RecordingAuthority();
    const { pair, primary } = await controlledPair(authority, 'block');
    await Promise.all(Array.from({ length: 5 }, () => alloc(primary, 'ids', 1)));
    const standby = pair.standby as CounterNode;
    expect(standby.status().promotingEpoch).toBe(0);
    const epoch = primary.status().epoch + 1;
    pair.standbyDisk.hang(/meta/);
    const promoted = standby.promote(epoch, { standby: primaryAddress, aloneApproved: true });
    const again = standby.promote(epoch, { standby: primaryAddress, aloneApproved: true });
    await vi.waitFor(() => expect(standby.status().promotingEpoch).toBe(epoch));
    expect(standby.status()).toMatchObject({ role: 'standby', epoch: epoch - 1 });
    pair.standbyDisk.unhang();
    await promoted;
    // The controller's retry of the same epoch: done already, or refused; either way settled.
    await Promise.allSettled([again]);
    expect(standby.status()).toMatchObject({ epoch, epochPrimary: 'standby', promotingEpoch: 0 });
  });

  it('a promotion from an older controller than the one whose ballot the standby stored is refused; its own ballot is obeyed (a controller that lost its configuration fenced it)', async () => {
    const authority = new RecordingAuthority();
    const { pair, primary } = await controlledPair(authority, 'block');
    await Promise.all(Array.from({ length: 5 }, () => alloc(primary, 'ids', 1)));
    const standby = pair.standby as CounterNode;
    const fenced = { n: 2, id: 'controller-2' };
    expect(await standby.storeBallot(fenced)).toEqual(fenced);
    expect(await standby.storeBallot({ n: 1, id: 'controller-1' })).toEqual(fenced); // not lowered
    const epoch = primary.status().epoch + 1;
    for (const ballot of [
      { n: 1, id: 'controller-1' },
      { n: 2, id: 'controller-x' },
    ]) {
      await expect(
        standby.promote(epoch, { standby: primaryAddress, aloneApproved: true, ballot }),
      ).rejects.toThrow(/older controller/);
    }
    // Without a ballot (a configuration from before ballots, or around the controller): refused.
    await expect(
      standby.promote(epoch, { standby: primaryAddress, aloneApproved: true }),
    ).rejects.toThrow(/carries no ballot; promote through the controller/);
    expect(standby.status()).toMatchObject({ role: 'standby', epoch: epoch - 1, ballot: fenced });
    await standby.promote(epoch, { standby: primaryAddress, aloneApproved: true, ballot: fenced });
    expect(standby.status()).toMatchObject({ epoch, epochPrimary: 'standby', ballot: fenced });
  });

  it('a deposed primary rejoins as standby of the promoted node: its unacknowledged tail is cut and no ID repeats', async () => {
    const authority = new RecordingAuthority();
    const { pair, primary } = await controlledPair(authority, 'block');
    const acked = await Promise.all(Array.from({ length: 10 }, () => alloc(primary, 'ids', 1)));
    pair.net.partition();
    // Written on the old primary, never acknowledged (blocked on the standby).
    const stranded = Promise.allSettled(Array.from({ length: 10 }, () => alloc(primary, 'ids', 1)));
    await vi.waitFor(
      () =>
        expect(primary.status().lastIndex).toBeGreaterThan(primary.status().replication!.ackIndex),
      { timeout: 10_000 },
    );
    const standby = pair.standby as CounterNode;
    const epoch = primary.status().epoch + 1;
    await standby.promote(epoch, { standby: primaryAddress, aloneApproved: true });
    await vi.waitFor(() => expect(standby.status().state).toBe('serving'), { timeout: 10_000 });
    acked.push(...(await Promise.all(Array.from({ length: 10 }, () => alloc(standby, 'ids', 1)))));
    pair.net.heal();
    // The old primary hears of the new epoch, steps down, and catches up from the new primary.
    await vi.waitFor(() => expect(primary.status().role).toBe('standby'), { timeout: 10_000 });
    for (const r of await stranded) {
      expect(r.status).toBe('rejected');
    }
    await vi.waitFor(() => expect(authority.calls).toContain('add primary'), { timeout: 10_000 });
    acked.push(...(await Promise.all(Array.from({ length: 10 }, () => alloc(standby, 'ids', 1)))));
    await vi.waitFor(
      async () =>
        expect((await walRecords(pair.primaryDisk)).map(recordKey)).toEqual(
          (await walRecords(pair.standbyDisk)).map(recordKey),
        ),
      { timeout: 10_000 },
    );
    expectUnique(acked);
    await expect(alloc(primary, 'ids', 1)).rejects.toBeInstanceOf(NotPrimaryError);
  });

  it('a restarting primary whose standby refuses its Hello (another protocol version, mid-upgrade) asks the controller after the start wait and serves alone', async () => {
    const authority = new RecordingAuthority();
    const net = new FaultNetwork(3);
    const refusing = () => (channel: Channel<ToPrimary>) =>
      refuseReplication(channel, new ProtocolError('replication: protocol version 1 is not 2'));
    const primary = await openFaultNode(new FaultStorage(), {
      id: 'primary',
      role: 'primary',
      standby: 'standby:7401',
      dial: (target) => net.dialer(target, refusing),
      controller: authority,
      degradeAfterMs: 200,
    });
    try {
      await vi.waitFor(() => expect(primary.status().state).toBe('serving'), { timeout: 10_000 });
      expect(authority.calls).toEqual(['remove ']); // the configured standby ('' = whichever)
      const r = await alloc(primary, 'ids', 1);
      expect(r.first).toBe(1);
    } finally {
      await primary.close();
      net.stop();
    }
  });

  it('step-down: the primary becomes a standby with everything acknowledged, and the promoted standby continues above it', async () => {
    const authority = new RecordingAuthority();
    const { pair, primary } = await controlledPair(authority);
    const acked = await Promise.all(Array.from({ length: 30 }, () => alloc(primary, 'ids', 1)));
    const { epoch, lastIndex } = await primary.stepDown(primary.status().epoch);
    expect(primary.status().role).toBe('standby');
    // It holds everything acknowledged: promotable again at once (not "catching up").
    expect(primary.status().replication?.catchingUp).toBe(false);
    const standby = pair.standby as CounterNode;
    expect(standby.status().lastIndex).toBe(lastIndex);
    await standby.promote(epoch + 1, { standby: primaryAddress });
    await vi.waitFor(() => expect(standby.status().state).toBe('serving'), { timeout: 10_000 });
    const next = await alloc(standby, 'ids', 1);
    expect(next.first).toBeGreaterThan(Math.max(...acked.map((r) => r.first)));
    await expect(primary.stepDown(0)).rejects.toThrow(/only a serving primary/);
  });
});
