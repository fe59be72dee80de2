import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NotPrimaryError, UnavailableError } from '../core/errors';
import { createMetrics } from '../core/metrics';
import { AssertionFailure } from '../core/assert';
import { FakeClock } from '../testing/fake-clock';
import { SimClock } from '../testing/sim-clock';
import { InSyncTracker, type StandbyLink } from './in-sync';
import type { InSyncAuthority, InSyncRequest, StandbyLossPolicy } from './types';

/** A controller whose answers the test releases one at a time. */
class FakeAuthority implements InSyncAuthority {
  calls: string[] = [];
  private pending: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  removeFromInSync({ primaryId, epoch, standbyId }: InSyncRequest): Promise<void> {
    return this.ask(`remove ${primaryId}@${epoch} ${standbyId}`);
  }

  addToInSync({ primaryId, epoch, standbyId }: InSyncRequest): Promise<void> {
    return this.ask(`add ${primaryId}@${epoch} ${standbyId}`);
  }

  private ask(call: string): Promise<void> {
    this.calls.push(call);
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }

  answer(err?: Error): void {
    const next = this.pending.shift();
    if (next === undefined) throw new Error('no call waiting');
    if (err) next.reject(err);
    else next.resolve();
  }
}

function setup(policy: StandbyLossPolicy = 'degrade', alone = false, sim?: SimClock) {
  const fake = new FakeClock();
  const clock = sim ?? fake;
  const authority = new FakeAuthority();
  const committer = { waitMs: 0, alone: false };
  const sender: StandbyLink & { state: string; ackedIndex: number } = {
    state: 'streaming',
    ackedIndex: 0,
    standbyId: 'b',
  };
  let lastIndex = 0;
  const deposed: string[] = [];
  const metrics = createMetrics({ defaults: false });
  const tracker = new InSyncTracker({
    nodeId: 'a',
    incarnation: 'dir-a',
    epoch: 7,
    authority,
    policy,
    degradeAfterMs: 500,
    committer: {
      setAlone: (a: boolean) => void (committer.alone = a),
      standbyWaitMs: () => (committer.alone ? 0 : committer.waitMs),
    },
    sender,
    lastIndex: () => lastIndex,
    acknowledged: () => ({ index: lastIndex, epoch: 7 }),
    standbyId: 'b',
    clock,
    logger: pino({ level: 'silent' }),
    metrics,
    onDeposed: (reason) => deposed.push(reason),
    alone,
  });
  const tick = async (ms = 100) => {
    if (sim !== undefined) return sim.advance(ms);
    fake.advance(ms);
    await vi.advanceTimersByTimeAsync(ms);
  };
  const setLastIndex = (i: number) => (lastIndex = i);
  return { tracker, authority, committer, sender, deposed, tick, setLastIndex, metrics };
}

describe('in-sync tracker', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('acknowledges alone only after the controller said yes, and asks to add the standby back once its ack covers everything', async () => {
    const t = setup();
    t.committer.waitMs = 400;
    await t.tick();
    expect(t.authority.calls).toEqual([]); // not yet past degradeAfterMs
    t.committer.waitMs = 600;
    await t.tick();
    expect(t.authority.calls).toEqual(['remove a@7 b']);
    expect(t.tracker.state).toBe('degrading');
    await t.tick();
    expect(t.committer.alone).toBe(false); // still waiting for the durable yes
    t.authority.answer();
    await t.tick(0);
    expect(t.committer.alone).toBe(true);
    expect(t.tracker.state).toBe('alone');
    expect((await t.metrics.degraded.get()).values[0]?.value).toBe(1);

    // The standby streams again. It is waited for only once its ack reaches a record written
    // after it was back (index 50), then it goes back once it covers everything (index 60).
    t.sender.state = 'catching-up';
    await t.tick();
    expect(t.tracker.state).toBe('alone');
    t.setLastIndex(50);
    t.committer.waitMs = 0; // a streaming standby acknowledges promptly
    t.sender.state = 'streaming';
    await t.tick();
    expect(t.tracker.state).toBe('alone');
    t.sender.ackedIndex = 49;
    await t.tick();
    expect(t.tracker.state).toBe('alone');
    t.setLastIndex(60);
    t.sender.ackedIndex = 50;
    await t.tick();
    expect(t.tracker.state).toBe('resyncing');
    expect(t.committer.alone).toBe(false);
    t.sender.ackedIndex = 59;
    await t.tick();
    expect(t.authority.calls).toHaveLength(1);
    t.sender.ackedIndex = 60;
    await t.tick();
    expect(t.authority.calls).toEqual(['remove a@7 b', 'add a@7 b']);
    t.authority.answer();
    await t.tick(0);
    expect(t.tracker.state).toBe('in-sync');
    expect((await t.metrics.degraded.get()).values[0]?.value).toBe(0);
    t.tracker.stop();
  });

  it('asks to add back a standby the configuration leaves out while acknowledgements wait for it, and backs off after a refusal', async () => {
    const t = setup();
    t.tracker.noteInSyncSet(['a']);
    expect(t.authority.calls).toEqual(['add a@7 b']);
    t.authority.answer(new UnavailableError('controller: b not added back: its log ends …'));
    await t.tick(0);
    t.tracker.noteInSyncSet(['a']); // the next configuration poll
    expect(t.authority.calls).toHaveLength(1);
    await t.tick(1000);
    t.tracker.noteInSyncSet(['a']);
    expect(t.authority.calls).toEqual(['add a@7 b', 'add a@7 b']);
    t.authority.answer();
    await t.tick(0);
    t.tracker.noteInSyncSet(['a', 'b']); // in the set: nothing to ask
    expect(t.authority.calls).toHaveLength(2);
    t.tracker.stop();
  });

  it('policy block never asks the controller and never acknowledges alone', async () => {
    const t = setup('block');
    t.committer.waitMs = 60_000;
    for (let i = 0; i < 20; i++) await t.tick();
    expect(t.authority.calls).toEqual([]);
    expect(t.committer.alone).toBe(false);
    t.tracker.stop();
  });

  it('an unreachable controller keeps it waiting for the standby, retried once a second', async () => {
    const t = setup();
    t.committer.waitMs = 600;
    await t.tick();
    t.authority.answer(new UnavailableError('controller: unreachable'));
    await t.tick(0);
    expect(t.committer.alone).toBe(false);
    expect(t.tracker.state).toBe('in-sync');
    for (let i = 0; i < 8; i++) await t.tick();
    expect(t.authority.calls).toHaveLength(1);
    await t.tick(300);
    expect(t.authority.calls).toHaveLength(2);
    t.tracker.stop();
  });

  it('a controller that names another primary deposes this one', async () => {
    const t = setup();
    t.committer.waitMs = 600;
    await t.tick();
    t.authority.answer(new NotPrimaryError('controller: c is primary of epoch 8'));
    await t.tick(0);
    expect(t.committer.alone).toBe(false);
    expect(t.deposed).toEqual(['controller: c is primary of epoch 8']);
    t.tracker.stop();
  });

  it('starts alone when the promotion came with the approval (the node begins its epoch alone)', async () => {
    const t = setup('degrade', true);
    expect(t.tracker.state).toBe('alone');
    expect((await t.metrics.degraded.get()).values[0]?.value).toBe(1);
    t.tracker.stop();
  });

  it('a standby that is connected but silent (paused) is never waited for again: no flapping between alone and waiting', async () => {
    const t = setup('degrade', true);
    t.committer.alone = true; // as the node begins it
    t.setLastIndex(100);
    t.sender.state = 'streaming'; // a SIGSTOPped standby: the stream stays open
    t.sender.ackedIndex = 40;
    for (let i = 0; i < 50; i++) {
      await t.tick();
      expect(t.tracker.state).toBe('alone');
    }
    expect(t.authority.calls).toEqual([]); // never asked to degrade again
    expect(t.committer.alone).toBe(true); // acknowledgements never went back to waiting
    t.tracker.stop();
  });

  it('asserts that the standby ack it sees only moves forward', async () => {
    const clock = new SimClock();
    const t = setup('degrade', false, clock);
    t.sender.ackedIndex = 10;
    await t.tick();
    t.sender.ackedIndex = 9;
    await expect(t.tick()).rejects.toThrow(AssertionFailure);
    t.tracker.stop();
  });
});
