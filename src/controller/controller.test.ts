import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NotPrimaryError, StaleEpochError, UnavailableError, WrongRoleError } from '../core/errors';
import { FakeClock } from '../testing/fake-clock';
import { FaultStorage } from '../testing/fault-storage';
import { FileConfigStore } from './config-store';
import { Controller, type NodeAdmin, type ProbedStatus } from './controller';
import { createControllerMetrics } from './metrics';

const a = { id: 'a', address: 'a:1' };
const b = { id: 'b', address: 'b:1' };

/** Two nodes the test can take down, with every call the controller made. */
class FakeAdmin implements NodeAdmin {
  up = new Map([
    ['a:1', true],
    ['b:1', true],
  ]);
  statuses = new Map<string, ProbedStatus>([
    [
      'a:1',
      {
        role: 'primary',
        state: 'serving',
        epoch: 3,
        epochPrimary: 'a',
        lastIndex: 10,
        catchingUp: false,
      },
    ],
    [
      'b:1',
      {
        role: 'standby',
        state: 'serving',
        epoch: 3,
        epochPrimary: 'a',
        lastIndex: 10,
        catchingUp: false,
      },
    ],
  ]);
  calls: string[] = [];
  promoteFails = 0;
  /** > 0: answers arrive this much later, describing the node as it is then. */
  statusDelayMs = 0;

  status(address: string): Promise<ProbedStatus> {
    if (!this.up.get(address)) return Promise.reject(new UnavailableError('connection refused'));
    if (this.statusDelayMs === 0)
      return Promise.resolve(this.statuses.get(address) as ProbedStatus);
    return new Promise((resolve) =>
      setTimeout(() => resolve(this.statuses.get(address) as ProbedStatus), this.statusDelayMs),
    );
  }

  promote(address: string, epoch: number, standby: string, alone: boolean): Promise<void> {
    this.calls.push(`promote ${address} ${epoch} ${standby} ${alone ? 'alone' : 'with-standby'}`);
    if (this.promoteFails > 0) {
      this.promoteFails--;
      return Promise.reject(new UnavailableError('promote: no answer'));
    }
    const s = this.statuses.get(address) as ProbedStatus;
    if (s.role === 'standby' && s.epoch >= epoch) {
      return Promise.reject(new StaleEpochError(`promote to ${epoch} refused: ${s.epoch} held`));
    }
    this.statuses.set(address, { ...s, role: 'primary', epoch });
    return Promise.resolve();
  }

  stepDown(address: string): Promise<{ epoch: number; lastIndex: number }> {
    this.calls.push(`stepDown ${address}`);
    const s = this.statuses.get(address) as ProbedStatus;
    this.statuses.set(address, { ...s, role: 'standby' });
    return Promise.resolve({ epoch: s.epoch, lastIndex: s.lastIndex });
  }
}

function setup(storage = new FaultStorage(), admin = new FakeAdmin()) {
  const clock = new FakeClock();
  const store = new FileConfigStore(storage, '/ctl');
  const metrics = createControllerMetrics({ defaults: false });
  const controller = new Controller({
    store,
    admin,
    clock,
    logger: pino({ level: 'silent' }),
    metrics,
    nodes: [a, b],
    probeIntervalMs: 100,
    failoverTimeoutMs: 500,
    startupGraceMs: 2000,
  });
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 50) {
      clock.advance(50);
      await vi.advanceTimersByTimeAsync(50);
    }
  };
  return { controller, admin, store, storage, run, metrics };
}

describe('controller', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('promotes the in-sync standby once the primary has been unreachable for the failover timeout', async () => {
    const t = setup();
    await t.controller.start();
    await t.run(1000);
    expect(t.admin.calls).toEqual([]); // a healthy pair: nothing to do
    t.admin.up.set('a:1', false);
    await t.run(300);
    expect(t.admin.calls).toEqual([]); // not yet past the timeout
    await t.run(500);
    expect(t.admin.calls).toEqual(['promote b:1 4 a:1 alone']);
    const config = (await t.store.load())!;
    expect(config).toMatchObject({
      epoch: 4,
      primary: b,
      standby: a,
      inSync: ['b'],
      promoting: false,
    });
    expect(config.lastFailover).toMatchObject({
      kind: 'failover',
      fromNode: 'a',
      toNode: 'b',
      epoch: 4,
    });
    expect((await t.metrics.failovers.get()).values[0]?.value).toBe(1);
    // The old primary coming back does not cause another promotion.
    t.admin.up.set('a:1', true);
    t.admin.statuses.set('a:1', {
      role: 'standby',
      state: 'serving',
      epoch: 4,
      epochPrimary: 'b',
      lastIndex: 9,
      catchingUp: true,
    });
    await t.run(1000);
    expect(t.admin.calls).toHaveLength(1);
    await t.controller.stop();
  });

  it('never promotes a standby the primary had taken out of the in-sync set', async () => {
    const t = setup();
    await t.controller.start();
    await t.run(200); // both seen
    await t.controller.removeFromInSync('a', 3, 'b');
    expect((await t.store.load())!.inSync).toEqual(['a']);
    t.admin.up.set('a:1', false);
    await t.run(3000);
    expect(t.admin.calls).toEqual([]);
    await t.controller.stop();
  });

  it('refuses in-sync changes from a node that is not the primary of that epoch', async () => {
    const t = setup();
    await t.controller.start();
    await expect(t.controller.removeFromInSync('b', 3, 'a')).rejects.toBeInstanceOf(
      NotPrimaryError,
    );
    await t.run(200); // both seen
    t.admin.up.set('a:1', false);
    await t.run(1000); // b promoted to epoch 4
    await expect(t.controller.removeFromInSync('a', 3, 'b')).rejects.toBeInstanceOf(
      NotPrimaryError,
    );
    // The new primary may add its standby back once it has caught up.
    const config = await t.controller.addToInSync('b', 4, 'a');
    expect(config.inSync).toEqual(['b', 'a']);
    expect((await t.store.load())!.inSync).toEqual(['b', 'a']);
    await t.controller.stop();
  });

  it('a controller that dies mid-promotion finishes it after a restart, with the same epoch', async () => {
    const storage = new FaultStorage();
    const admin = new FakeAdmin();
    const first = setup(storage, admin);
    await first.controller.start();
    await first.run(200);
    admin.up.set('a:1', false);
    admin.promoteFails = 100; // the promotion is never confirmed
    await first.run(1000);
    await first.controller.stop();
    expect((await first.store.load())!).toMatchObject({ promoting: true, epoch: 4, primary: b });
    admin.promoteFails = 0;
    admin.calls = [];
    const second = setup(storage, admin);
    await second.controller.start();
    await second.run(300);
    expect(admin.calls[0]).toBe('promote b:1 4 a:1 alone');
    expect((await second.store.load())!).toMatchObject({ promoting: false, epoch: 4, primary: b });
    await second.controller.stop();
  });

  it('a primary not seen since the controller started gets the startup grace before a failover', async () => {
    const t = setup();
    t.admin.up.set('a:1', false);
    await t.controller.start();
    await t.run(2000);
    expect(t.admin.calls).toEqual([]);
    await t.run(700);
    expect(t.admin.calls).toEqual(['promote b:1 4 a:1 alone']);
    await t.controller.stop();
  });

  it('probe answers that straddle a switchover decide nothing (no second promotion of the new primary)', async () => {
    const t = setup();
    await t.controller.start();
    await t.run(200);
    t.admin.statusDelayMs = 40;
    await t.run(100); // a probe round is now waiting for its answers
    const switched = t.controller.switchover();
    await t.run(1000);
    await switched;
    expect(t.admin.calls).toEqual(['stepDown a:1', 'promote b:1 4 a:1 with-standby']);
    expect((await t.store.load())!).toMatchObject({ primary: b, epoch: 4, promoting: false });
    await t.controller.stop();
  });

  it('a promotion blocked by the same epoch number from another primary is retried above it', async () => {
    const t = setup();
    await t.controller.start();
    await t.run(200);
    t.admin.up.set('a:1', false);
    t.admin.promoteFails = 1_000; // decided (epoch 4) but not carried out yet
    await t.run(1000);
    // Meanwhile a restarted and took epoch 4 itself, and b accepted it from a.
    t.admin.statuses.set('b:1', {
      role: 'standby',
      state: 'serving',
      epoch: 4,
      epochPrimary: 'a',
      lastIndex: 12,
      catchingUp: false,
    });
    t.admin.promoteFails = 0;
    await t.run(500);
    expect(t.admin.calls).toContain('promote b:1 5 a:1 alone');
    expect((await t.store.load())!).toMatchObject({ primary: b, epoch: 5, promoting: false });
    await t.controller.stop();
  });

  it('a primary that stepped down with no configuration stored is handed the primary back', async () => {
    const t = setup();
    await t.controller.start();
    await t.run(200);
    await t.admin.stepDown('a:1'); // a switchover whose controller died right after the step-down
    await t.run(500);
    expect(t.admin.calls).toEqual(['stepDown a:1', 'promote a:1 4 b:1 with-standby']);
    expect((await t.store.load())!).toMatchObject({ primary: a, epoch: 4, promoting: false });
    await t.controller.stop();
  });

  it('refuses a switchover when the standby missed its last probe, and an approval for a standby it does not know', async () => {
    const t = setup();
    await t.controller.start();
    await t.run(200);
    t.admin.up.set('b:1', false);
    await t.run(200);
    await expect(t.controller.switchover()).rejects.toThrow(/did not answer its last probe/);
    expect(t.admin.calls).toEqual([]);
    await expect(t.controller.removeFromInSync('a', 3, 'x')).rejects.toBeInstanceOf(WrongRoleError);
    expect((await t.store.load())!.inSync).toEqual(['a', 'b']);
    await t.controller.stop();
  });

  it('the node being promoted may ask for in-sync changes before its promotion is confirmed', async () => {
    const t = setup();
    await t.controller.start();
    await t.run(200);
    t.admin.up.set('a:1', false);
    t.admin.promoteFails = 1_000;
    await t.run(1000);
    expect((await t.store.load())!).toMatchObject({ primary: b, promoting: true, epoch: 4 });
    const config = await t.controller.addToInSync('b', 4, 'a');
    expect(config.inSync).toEqual(['b', 'a']);
    await t.controller.stop();
  });

  it('switchover: the primary steps down first, then the standby is promoted with both in sync', async () => {
    const t = setup();
    await t.controller.start();
    await t.run(200); // both probed
    const config = await t.controller.switchover();
    expect(t.admin.calls).toEqual(['stepDown a:1', 'promote b:1 4 a:1 with-standby']);
    expect(config).toMatchObject({
      primary: b,
      standby: a,
      inSync: ['b', 'a'],
      promoting: false,
      epoch: 4,
    });
    expect(config.lastFailover?.kind).toBe('switchover');
    await t.controller.stop();
  });
});
