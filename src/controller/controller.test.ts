import { compareBallots, noBallot, type Ballot } from '../core/ballot';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ConfigError,
  DataDirError,
  NotPrimaryError,
  StaleEpochError,
  SwitchoverFailedError,
  UnavailableError,
  WrongRoleError,
} from '../core/errors';
import { FakeClock } from '../testing/fake-clock';
import { FaultStorage } from '../testing/fault-storage';
import { FileConfigStore, type ClusterConfig } from './config-store';
import { Controller, type NodeAdmin, type PromoteCall } from './controller';
import type { NodeReport } from './members';
import { createControllerMetrics } from './metrics';

const a = { id: 'a', address: 'a:1' };
const b = { id: 'b', address: 'b:1' };
const cluster = 'c1';

function report(changes: Partial<NodeReport> = {}): NodeReport {
  return {
    role: 'standby',
    state: 'serving',
    epoch: 3,
    epochPrimary: 'a',
    incarnation: 'dir-b',
    clusterId: cluster,
    lastIndex: 10,
    lastEpoch: 3,
    catchingUp: false,
    acknowledged: { epoch: 0, index: 0 },
    writeStallMs: 0,
    ...changes,
  };
}

const primaryA = (changes: Partial<NodeReport> = {}) =>
  report({
    role: 'primary',
    incarnation: 'dir-a',
    acknowledged: { epoch: 3, index: 10 },
    ...changes,
  });

/** The configuration of a healthy pair: a primary, both in sync, vouched at index 10 of epoch 3. */
function seeded(changes: Partial<ClusterConfig> = {}): ClusterConfig {
  return {
    version: 7,
    clusterId: cluster,
    epoch: 3,
    epochSeen: 3,
    primary: a,
    standby: b,
    members: [
      { id: 'a', incarnation: 'dir-a', vouched: { epoch: 3, index: 10 } },
      { id: 'b', incarnation: 'dir-b', vouched: { epoch: 3, index: 10 } },
    ],
    inSync: ['a', 'b'],
    lastFailover: null,
    promoting: false,
    forceSkipAhead: 0,
    lastInSyncChange: null,
    ...changes,
  };
}

/** a running as primary of `epoch` (which it began), b its standby: what a rebuild finds. */
function runningPair(
  epoch: number,
  aChanges: Partial<NodeReport> = {},
  bChanges: Partial<NodeReport> = {},
): FakeAdmin {
  const admin = new FakeAdmin();
  const began = { epoch, epochPrimary: 'a', lastEpoch: epoch };
  admin.set('a:1', { role: 'primary', incarnation: 'dir-a', ...began, ...aChanges });
  admin.set('b:1', { ...began, ...bChanges });
  return admin;
}

/** Two nodes the test can take down or change, with every call the controller made. */
class FakeAdmin implements NodeAdmin {
  up = new Map([
    ['a:1', true],
    ['b:1', true],
  ]);
  statuses = new Map<string, NodeReport>([
    ['a:1', primaryA()],
    ['b:1', report()],
  ]);
  calls: string[] = [];
  promoteFails = 0;
  /** > 0: answers arrive this much later, describing the node as it is then. */
  statusDelayMs = 0;
  /** Down nodes whose port refuses connections (crashed); others are silent when down. */
  refused = new Set<string>();
  /** Nodes that answer nothing (paused): each probe fails at its 400 ms deadline. */
  paused = new Set<string>();
  /** Per node: answers arrive this much later (a stalled event loop). */
  slow = new Map<string, number>();
  lost: ((address: string) => void) | null = null;

  status(address: string): Promise<NodeReport> {
    if (this.paused.has(address)) {
      return new Promise((_, reject) =>
        setTimeout(() => reject(new UnavailableError('deadline exceeded')), 400),
      );
    }
    if (!this.up.get(address)) return Promise.reject(new UnavailableError('connection refused'));
    const slowMs = this.slow.get(address);
    if (slowMs !== undefined) {
      return new Promise((resolve) =>
        setTimeout(() => resolve(this.statuses.get(address) as NodeReport), slowMs),
      );
    }
    if (this.statusDelayMs === 0) return Promise.resolve(this.statuses.get(address) as NodeReport);
    return new Promise((resolve) =>
      setTimeout(() => resolve(this.statuses.get(address) as NodeReport), this.statusDelayMs),
    );
  }

  /** Admin.Fence calls, as `address n/id` (not in `calls`: those are role changes). */
  fences: string[] = [];
  /** The ballot each promotion carried. */
  promoteBallots: Array<Ballot | undefined> = [];

  fence(address: string, ballot: Ballot): Promise<NodeReport> {
    this.fences.push(`${address} ${ballot.n}/${ballot.id}`);
    if (!this.up.get(address) || this.paused.has(address)) {
      return Promise.reject(new UnavailableError('fence: no answer'));
    }
    const s = this.statuses.get(address) as NodeReport;
    const stored = s.ballot ?? noBallot;
    const next = compareBallots(ballot, stored) > 0 ? { ...s, ballot } : s;
    this.statuses.set(address, next);
    return Promise.resolve(next);
  }

  promote(address: string, epoch: number, standby: string, call: PromoteCall): Promise<void> {
    this.promoteBallots.push(call.ballot);
    const mode = call.aloneApproved ? 'alone' : 'with-standby';
    this.calls.push(
      `promote ${address} ${epoch} ${standby} ${mode}${call.skipAhead > 0 ? ` skip ${call.skipAhead}` : ''}`,
    );
    if (this.promoteFails > 0 || !this.up.get(address)) {
      this.promoteFails = Math.max(0, this.promoteFails - 1);
      return Promise.reject(new UnavailableError('promote: no answer'));
    }
    const s = this.statuses.get(address) as NodeReport;
    if (s.role === 'standby' && s.epoch >= epoch) {
      return Promise.reject(new StaleEpochError(`promote to ${epoch} refused: ${s.epoch} held`));
    }
    const id = address.slice(0, 1);
    this.statuses.set(address, { ...s, role: 'primary', epoch, epochPrimary: id });
    return Promise.resolve();
  }

  refusesConnections(address: string): Promise<boolean> {
    return Promise.resolve(!this.up.get(address) && this.refused.has(address));
  }

  onConnectionLost(lost: (address: string) => void): void {
    this.lost = lost;
  }

  /** The node at `address` dies: its port refuses connections, open ones drop. */
  crash(address: string): void {
    this.up.set(address, false);
    this.refused.add(address);
    this.lost?.(address);
  }

  stepDown(address: string): Promise<{ epoch: number; lastIndex: number }> {
    this.calls.push(`stepDown ${address}`);
    const s = this.statuses.get(address) as NodeReport;
    this.statuses.set(address, { ...s, role: 'standby' });
    return Promise.resolve({ epoch: s.epoch, lastIndex: s.lastIndex });
  }

  set(address: string, changes: Partial<NodeReport>): void {
    this.statuses.set(address, { ...(this.statuses.get(address) as NodeReport), ...changes });
  }
}

interface SetupOptions {
  storage?: FaultStorage;
  admin?: FakeAdmin;
  /** Stored before start (default: a healthy pair); null: nothing stored. */
  config?: ClusterConfig | null;
  nodes?: [typeof a, typeof b];
  bootstrap?: boolean;
  updateAddresses?: boolean;
  logger?: pino.Logger;
}

async function setup(o: SetupOptions = {}) {
  const storage = o.storage ?? new FaultStorage();
  const admin = o.admin ?? new FakeAdmin();
  const clock = new FakeClock();
  const store = new FileConfigStore(storage, '/ctl');
  const initial = o.config === undefined ? seeded() : o.config;
  if (initial !== null && (await store.load()) === null) await store.save(initial);
  const metrics = createControllerMetrics({ defaults: false });
  const controller = new Controller({
    store,
    admin,
    clock,
    logger: o.logger ?? pino({ level: 'silent' }),
    metrics,
    nodes: o.nodes,
    bootstrap: o.bootstrap,
    updateAddresses: o.updateAddresses,
    probeIntervalMs: 100,
    failoverTimeoutMs: 500,
    startupGraceMs: 2000,
    promoteTimeoutMs: 1000,
    vouchPersistMs: 500,
  });
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 50) {
      clock.advance(50);
      await vi.advanceTimersByTimeAsync(50);
    }
  };
  const stored = async () => (await store.load()) as ClusterConfig;
  const gauge = async () => (await metrics.notServing.get()).values[0]?.value;
  return { controller, admin, store, storage, run, metrics, stored, gauge };
}

/** A primary's in-sync request; each one newer than the one before (its seq). */
let seq = 0;
const change = (primaryId: string, epoch: number, standbyId: string, index = 10) => ({
  primaryId,
  primaryIncarnation: '',
  epoch,
  standbyId,
  acknowledged: { epoch, index },
  seq: ++seq,
});

/** A healthy pair for 500 ms, then a crashes; b has seen its stream from a reset, or not yet. */
async function crashPrimary(standbySawReset: boolean) {
  const t = await setup();
  await t.controller.start();
  await t.run(500);
  t.admin.set('b:1', { streamFromPrimary: !standbySawReset });
  t.admin.crash('a:1');
  return t;
}

describe('controller: failover', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('promotes the in-sync standby once the primary has been unreachable for the failover timeout', async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(1000);
    expect(t.admin.calls).toEqual([]); // a healthy pair: nothing to do
    t.admin.up.set('a:1', false);
    await t.run(300);
    expect(t.admin.calls).toEqual([]); // not yet past the timeout
    await t.run(500);
    expect(t.admin.calls).toEqual(['promote b:1 4 a:1 alone']);
    const config = await t.stored();
    expect(config).toMatchObject({
      epoch: 4,
      primary: b,
      standby: a,
      inSync: ['b'],
      promoting: false,
    });
    // The in-sync set as metrics: b in, a out; every failover kind exported from 0.
    const inSync = (await t.metrics.memberInSync.get()).values.map((v) => [v.labels.node, v.value]);
    expect(Object.fromEntries(inSync)).toEqual({ a: 0, b: 1 });
    const kinds = (await t.metrics.failovers.get()).values.map((v) => [v.labels.kind, v.value]);
    expect(Object.fromEntries(kinds)).toEqual({ failover: 1, switchover: 0, forced: 0 });
    expect(config.lastFailover).toMatchObject({
      kind: 'failover',
      fromNode: 'a',
      toNode: 'b',
      epoch: 4,
    });
    expect(config.lastFailover?.reason).toMatch(/primary a unreachable for \d+ ms/);
    expect((await t.metrics.failovers.get()).values[0]?.value).toBe(1);
    // The old primary coming back does not cause another promotion.
    t.admin.up.set('a:1', true);
    t.admin.set('a:1', {
      role: 'standby',
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
    const t = await setup();
    await t.controller.start();
    await t.run(200); // both seen
    await t.controller.removeFromInSync(change('a', 3, 'b'));
    expect((await t.stored()).inSync).toEqual(['a']);
    t.admin.up.set('a:1', false);
    await t.run(3000);
    expect(t.admin.calls).toEqual([]);
    expect(t.controller.blocked).toMatch(/b is not in the in-sync set/);
    expect(await t.gauge()).toBe(1);
    await t.controller.stop();
  });

  it('a configured primary that answers but does not serve as primary (starting, fenced, standby catching up) is failed over, with the reason recorded', async () => {
    for (const [state, role, expected] of [
      ['starting', 'primary', /is primary \(starting\), not a serving primary/],
      ['fenced', 'primary', /is primary \(fenced\)/],
      ['serving', 'standby', /is standby \(serving\)/],
    ] as const) {
      const t = await setup();
      await t.controller.start();
      await t.run(500);
      t.admin.set('a:1', { state, role, catchingUp: role === 'standby' });
      await t.run(400);
      expect(t.admin.calls).toEqual([]); // within the failover timeout
      await t.run(400);
      expect(t.admin.calls).toEqual(['promote b:1 4 a:1 alone']);
      expect((await t.stored()).lastFailover?.reason).toMatch(expected);
      await t.controller.stop();
    }
  });

  it('a primary whose disk write has been stuck longer than the failover timeout is failed over; short stalls under load are not', async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(500);
    t.admin.set('a:1', { writeStallMs: 120 }); // a slow write: healthy
    await t.run(2000);
    expect(t.admin.calls).toEqual([]);
    t.admin.set('a:1', { writeStallMs: 800 });
    await t.run(1000);
    expect(t.admin.calls).toEqual(['promote b:1 4 a:1 alone']);
    expect((await t.stored()).lastFailover?.reason).toMatch(/disk write in progress for 800 ms/);
    await t.controller.stop();
  });

  it('a controller that dies mid-promotion finishes it after a restart, with the same epoch', async () => {
    const storage = new FaultStorage();
    const admin = new FakeAdmin();
    const first = await setup({ storage, admin });
    await first.controller.start();
    await first.run(200);
    admin.up.set('a:1', false);
    admin.promoteFails = 100; // the promotion is never confirmed
    await first.run(1000);
    await first.controller.stop();
    expect(await first.stored()).toMatchObject({ promoting: true, epoch: 4, primary: b });
    admin.promoteFails = 0;
    admin.calls = [];
    const second = await setup({ storage, admin });
    await second.controller.start();
    await second.run(300);
    expect(admin.calls[0]).toBe('promote b:1 4 a:1 alone');
    expect(await second.stored()).toMatchObject({ promoting: false, epoch: 4, primary: b });
    await second.controller.stop();
  });

  it('a crashed primary (its port refuses connections, its standby saw the stream reset) is failed over at once, on the dropped connection, not after the timeout', async () => {
    const t = await crashPrimary(true);
    await vi.advanceTimersByTimeAsync(1); // no probe interval, no failover timeout
    expect(t.admin.calls).toEqual(['promote b:1 4 a:1 alone']);
    const config = await t.stored();
    expect(config).toMatchObject({ epoch: 4, primary: b, inSync: ['b'], promoting: false });
    expect(config.lastFailover?.reason).toBe(
      "primary a refused connections (nothing listens on its port) and b's replication stream from it was reset",
    );
    await t.controller.stop();
  });

  it('a refusal the standby does not confirm (its stream from the primary still up: only the controller is refused) waits for the failover timeout', async () => {
    const t = await crashPrimary(false);
    await t.run(300);
    expect(t.admin.calls).toEqual([]);
    await t.run(400);
    expect(t.admin.calls).toEqual(['promote b:1 4 a:1 alone']);
    expect((await t.stored()).lastFailover?.reason).toMatch(/^primary a unreachable for \d+ ms$/);
    await t.controller.stop();
  });

  it('the standby seeing the reset a moment after the refusal is enough: the controller looks again shortly', async () => {
    const t = await crashPrimary(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.admin.calls).toEqual([]);
    t.admin.set('b:1', { streamFromPrimary: false });
    await vi.advanceTimersByTimeAsync(30); // a fifth of the probe interval, not the timeout
    expect(t.admin.calls).toEqual(['promote b:1 4 a:1 alone']);
    expect((await t.stored()).lastFailover?.reason).toMatch(/refused connections/);
    await t.controller.stop();
  });

  it('a paused primary (connections accepted, no answer) is failed over once silent for the timeout, without waiting out its probes; one whose answers come 300 ms late is not', async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(500);
    t.admin.slow.set('a:1', 300); // a stalled event loop: every answer 300 ms late
    await t.run(3000);
    expect(t.admin.calls).toEqual([]);
    t.admin.slow.delete('a:1');
    await t.run(500);
    t.admin.paused.add('a:1');
    t.admin.set('b:1', { streamFromPrimary: true }); // a paused primary's stream stays open
    await t.run(400);
    expect(t.admin.calls).toEqual([]);
    await t.run(250); // silent for 500 ms, decided within a probe interval of that
    expect(t.admin.calls).toEqual(['promote b:1 4 a:1 alone']);
    expect((await t.stored()).lastFailover?.reason).toMatch(/^primary a unreachable for \d+ ms$/);
    await t.controller.stop();
  });

  it('a primary not seen since the controller started gets the startup grace before a failover, even one whose port refuses connections', async () => {
    const admin = new FakeAdmin();
    admin.up.set('a:1', false);
    admin.refused.add('a:1');
    admin.set('b:1', { streamFromPrimary: false });
    const t = await setup({ admin });
    await t.controller.start();
    await t.run(2000);
    expect(t.admin.calls).toEqual([]);
    await t.run(700);
    expect(t.admin.calls).toEqual(['promote b:1 4 a:1 alone']);
    await t.controller.stop();
  });

  it('a promotion blocked by the same epoch number from another primary is retried above it', async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(200);
    t.admin.up.set('a:1', false);
    t.admin.promoteFails = 1_000; // decided (epoch 4) but not carried out yet
    await t.run(1000);
    // Meanwhile a restarted and took epoch 4 itself, and b accepted it from a.
    t.admin.set('b:1', { epoch: 4, epochPrimary: 'a', lastIndex: 12 });
    t.admin.promoteFails = 0;
    await t.run(500);
    expect(t.admin.calls).toContain('promote b:1 5 a:1 alone');
    expect(await t.stored()).toMatchObject({ primary: b, epoch: 5, promoting: false });
    await t.controller.stop();
  });

  it('a primary that stepped down with no configuration change stored is handed the primary back', async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(200);
    await t.admin.stepDown('a:1'); // a switchover whose controller died right after the step-down
    await t.run(800);
    expect(t.admin.calls).toEqual(['stepDown a:1', 'promote a:1 4 b:1 with-standby']);
    expect(await t.stored()).toMatchObject({
      primary: a,
      epoch: 4,
      promoting: false,
      inSync: ['a', 'b'],
    });
    await t.controller.stop();
  });

  it("the vouched position follows the primary's acknowledged index and is written at most every vouchPersistMs", async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(200);
    t.admin.set('a:1', { lastIndex: 500, acknowledged: { epoch: 3, index: 480 } });
    t.admin.set('b:1', { lastIndex: 500 });
    await t.run(700);
    const members = (await t.stored()).members;
    expect(members.map((m) => m.vouched)).toEqual([
      { epoch: 3, index: 480 },
      { epoch: 3, index: 480 },
    ]);
    expect((await t.stored()).version).toBe(7); // refinements, not configuration changes
    await t.controller.stop();
  });
});

describe('controller: identity of the members', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('a node on a data directory the controller does not know is taken out of the in-sync set durably before it is placed, as a catching-up standby, and never promoted', async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(200);
    t.admin.up.set('b:1', false); // b's disk replaced: it restarts on an empty directory
    const joined = await t.controller.join(
      'b',
      report({
        incarnation: 'dir-b2',
        epoch: 0,
        lastIndex: 0,
        lastEpoch: 0,
        clusterId: '',
        state: 'starting',
        catchingUp: true,
      }),
    );
    const stored = await t.stored();
    expect(stored.inSync).toEqual(['a']);
    expect(stored.members.find((m) => m.id === 'b')).toEqual({
      id: 'b',
      incarnation: 'dir-b2',
      vouched: null,
    });
    expect(joined.placement).toMatchObject({
      role: 'standby',
      catchingUp: true,
      clusterId: cluster,
    });
    t.admin.up.set('b:1', true);
    t.admin.set('b:1', { incarnation: 'dir-b2', epoch: 3, lastIndex: 10, catchingUp: false });
    t.admin.up.set('a:1', false);
    await t.run(3000);
    expect(t.admin.calls).toEqual([]); // b holds none of the history: never promoted
    expect(t.controller.blocked).toMatch(/b is not in the in-sync set/);
    // The node holding the history returns: the cluster serves again by itself.
    t.admin.up.set('a:1', true);
    await t.run(300);
    expect(t.controller.blocked).toBe('');
    expect(await t.gauge()).toBe(0);
    await t.controller.stop();
  });

  it('another directory is a new member even when its log reaches what the controller vouches for (a disk rebuilt from files, a clone of another disk): identity, not position', async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(200);
    t.admin.up.set('b:1', false);
    const joined = await t.controller.join(
      'b',
      report({ incarnation: 'dir-b-rebuilt', lastIndex: 10, lastEpoch: 3, state: 'starting' }),
    );
    expect(joined.placement).toMatchObject({ role: 'standby', catchingUp: true });
    expect((await t.stored()).inSync).toEqual(['a']);
    expect((await t.stored()).members.find((m) => m.id === 'b')).toEqual({
      id: 'b',
      incarnation: 'dir-b-rebuilt',
      vouched: null,
    });
    await t.controller.stop();
  });

  it('the same directory restored from an old copy (its log behind what was acknowledged) is a new member too', async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(200);
    t.admin.set('a:1', { lastIndex: 900, acknowledged: { epoch: 3, index: 900 } });
    t.admin.set('b:1', { lastIndex: 900 });
    await t.run(600); // vouched now 900@3
    t.admin.up.set('b:1', false);
    const joined = await t.controller.join('b', report({ lastIndex: 400, state: 'starting' }));
    expect(joined.placement).toMatchObject({ role: 'standby', catchingUp: true });
    expect((await t.stored()).inSync).toEqual(['a']);
    t.admin.up.set('b:1', true);
    t.admin.set('b:1', { lastIndex: 400 });
    t.admin.up.set('a:1', false);
    await t.run(3000);
    expect(t.admin.calls).toEqual([]);
    await t.controller.stop();
  });

  it('a directory of another cluster, or a node that is not a member, is refused', async () => {
    const t = await setup();
    await t.controller.start();
    await expect(t.controller.join('b', report({ clusterId: 'other' }))).rejects.toBeInstanceOf(
      DataDirError,
    );
    await expect(t.controller.join('x', report())).rejects.toBeInstanceOf(WrongRoleError);
    expect((await t.stored()).inSync).toEqual(['a', 'b']);
    await t.controller.stop();
  });

  it('the primary rejoining on its own directory goes back to serving; with its standby out of sync it may acknowledge alone', async () => {
    const t = await setup({
      config: seeded({
        inSync: ['a'],
        members: [
          { id: 'a', incarnation: 'dir-a', vouched: { epoch: 3, index: 10 } },
          { id: 'b', incarnation: 'dir-b', vouched: null },
        ],
      }),
    });
    await t.controller.start();
    const joined = await t.controller.join('a', primaryA({ state: 'starting' }));
    expect(joined.placement).toMatchObject({ role: 'primary', standby: b, aloneApproved: true });
    await t.controller.stop();
  });
});

describe('controller: a primary that stays starting', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('says so at info level while the placed primary begins its epoch, then warns once it lasts past the start grace', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => void lines.push(JSON.parse(line) as never) },
    );
    const t = await setup({
      logger,
      config: seeded({
        inSync: ['a'],
        members: [
          { id: 'a', incarnation: 'dir-a', vouched: { epoch: 3, index: 10 } },
          { id: 'b', incarnation: 'dir-b', vouched: null },
        ],
      }),
    });
    t.admin.set('a:1', { state: 'starting' });
    await t.controller.start();
    await t.controller.join('a', primaryA({ state: 'starting' }));
    await t.run(1000); // past the failover timeout, within the start grace (2000 ms)
    const notServing = (level: number) =>
      lines.filter((l) => l.level === level && /primary a is primary \(starting\)/.test(l.msg));
    expect(notServing(30)).toHaveLength(1);
    expect(notServing(40)).toHaveLength(0);
    await t.run(3000); // still starting, long after the grace
    expect(notServing(40)).toHaveLength(1);
    await t.controller.stop();
  });
});

describe('controller: in-sync changes', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('refuses in-sync changes from a node that is not the primary of that epoch, or on another directory', async () => {
    const t = await setup();
    await t.controller.start();
    await expect(t.controller.removeFromInSync(change('b', 3, 'a'))).rejects.toBeInstanceOf(
      NotPrimaryError,
    );
    await expect(
      t.controller.removeFromInSync({ ...change('a', 3, 'b'), primaryIncarnation: 'dir-a2' }),
    ).rejects.toBeInstanceOf(NotPrimaryError);
    await t.run(200); // both seen
    t.admin.up.set('a:1', false);
    await t.run(1000); // b promoted to epoch 4
    await expect(t.controller.removeFromInSync(change('a', 3, 'b'))).rejects.toBeInstanceOf(
      NotPrimaryError,
    );
    await t.controller.stop();
  });

  it('adds a standby back only after probing it: the directory it knows, holding what the primary acknowledged', async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(200);
    await t.controller.removeFromInSync(change('a', 3, 'b'));
    t.admin.set('b:1', { lastIndex: 40 });
    await expect(t.controller.addToInSync(change('a', 3, 'b', 50))).rejects.toThrow(
      /its log ends at 40@3, before 50@3/,
    );
    t.admin.set('b:1', { lastIndex: 60, incarnation: 'dir-b9' });
    await expect(t.controller.addToInSync(change('a', 3, 'b', 50))).rejects.toThrow(
      /data directory/,
    );
    t.admin.set('b:1', { incarnation: 'dir-b' });
    t.admin.up.set('b:1', false);
    await expect(t.controller.addToInSync(change('a', 3, 'b', 50))).rejects.toThrow(
      /cannot verify/,
    );
    expect((await t.stored()).inSync).toEqual(['a']);
    t.admin.up.set('b:1', true);
    const config = await t.controller.addToInSync(change('a', 3, 'b', 50));
    expect(config.inSync).toEqual(['a', 'b']);
    expect(config.members.find((m) => m.id === 'b')?.vouched).toEqual({ epoch: 3, index: 50 });
    await t.controller.stop();
  });

  it('the node being promoted may ask for in-sync changes before its promotion is confirmed', async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(200);
    t.admin.up.set('a:1', false);
    t.admin.promoteFails = 1_000;
    await t.run(1000);
    expect(await t.stored()).toMatchObject({ primary: b, promoting: true, epoch: 4 });
    t.admin.up.set('a:1', true);
    t.admin.set('a:1', {
      role: 'standby',
      epoch: 4,
      epochPrimary: 'b',
      lastEpoch: 4,
      lastIndex: 11,
    });
    const config = await t.controller.addToInSync(change('b', 4, 'a', 10));
    expect(config.inSync).toEqual(['b', 'a']);
    await t.controller.stop();
  });
});

describe('controller: switchover and forced promotion', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('switchover: the primary steps down first, then the standby is promoted with both in sync', async () => {
    const t = await setup();
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

  it('probe answers that straddle a switchover decide nothing (no second promotion of the new primary)', async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(200);
    t.admin.statusDelayMs = 40;
    await t.run(100); // a probe round is now waiting for its answers
    const switched = t.controller.switchover();
    await t.run(1000);
    await switched;
    expect(t.admin.calls).toEqual(['stepDown a:1', 'promote b:1 4 a:1 with-standby']);
    expect(await t.stored()).toMatchObject({ primary: b, epoch: 4, promoting: false });
    await t.controller.stop();
  });

  it('a switchover whose target does not serve in time hands the primary back to the stepped-down node at a new epoch, and fails', async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(200);
    t.admin.up.set('b:1', false); // b dies right after the switchover was decided
    t.admin.up.set('b:1', true);
    t.admin.promoteFails = 1_000_000;
    const originalPromote = t.admin.promote.bind(t.admin);
    t.admin.promote = (address, epoch, standby, call) => {
      if (address === 'a:1') t.admin.promoteFails = 0;
      return originalPromote(address, epoch, standby, call);
    };
    const switched = t.controller.switchover().catch((e: unknown) => e);
    await t.run(3000);
    const err = await switched;
    expect(err).toBeInstanceOf(SwitchoverFailedError);
    expect((err as Error).message).toMatch(
      /b did not serve within \d+ ms; a is primary again \(epoch 5\)/,
    );
    expect(t.admin.calls[0]).toBe('stepDown a:1');
    expect(t.admin.calls).toContain('promote a:1 5 b:1 alone');
    expect(await t.stored()).toMatchObject({
      primary: a,
      epoch: 5,
      inSync: ['a'],
      promoting: false,
    });
    await t.controller.stop();
  });

  it('refuses a switchover when the standby missed its last probe, and an approval for a standby it does not know', async () => {
    const t = await setup();
    await t.controller.start();
    await t.run(200);
    t.admin.up.set('b:1', false);
    await t.run(200);
    await expect(t.controller.switchover()).rejects.toThrow(/cannot take over \(unreachable/);
    expect(t.admin.calls).toEqual([]);
    await expect(t.controller.removeFromInSync(change('a', 3, 'x'))).rejects.toBeInstanceOf(
      WrongRoleError,
    );
    expect((await t.stored()).inSync).toEqual(['a', 'b']);
    await t.controller.stop();
  });

  it('a forced promotion stores the skip-ahead, promotes with it, and records the new member', async () => {
    const t = await setup({
      config: seeded({
        inSync: [],
        members: [
          { id: 'a', incarnation: 'dir-a', vouched: null },
          { id: 'b', incarnation: 'dir-b', vouched: null },
        ],
      }),
    });
    await t.controller.start();
    t.admin.up.set('a:1', false);
    t.admin.set('b:1', { incarnation: 'dir-b3', catchingUp: true });
    await expect(t.controller.forcePromote('b', 0)).rejects.toThrow(/skip-ahead >= 1/);
    const config = await t.controller.forcePromote('b', 1_000_000);
    expect(t.admin.calls).toEqual(['promote b:1 4 a:1 alone skip 1000000']);
    expect(config).toMatchObject({
      primary: b,
      inSync: ['b'],
      promoting: false,
      forceSkipAhead: 0,
    });
    expect(config.lastFailover).toMatchObject({ kind: 'forced', toNode: 'b' });
    expect(config.members.find((m) => m.id === 'b')?.incarnation).toBe('dir-b3');
    await t.controller.stop();
  });
});

describe('controller: without a stored configuration', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('creates a brand-new cluster only when both members report empty directories', async () => {
    const admin = new FakeAdmin();
    admin.up.set('a:1', false);
    admin.up.set('b:1', false);
    const t = await setup({ admin, config: null, nodes: [a, b] });
    await t.controller.start();
    const empty = (dir: string) =>
      report({
        incarnation: dir,
        clusterId: '',
        epoch: 0,
        epochPrimary: '',
        lastIndex: 0,
        lastEpoch: 0,
        state: 'starting',
      });
    await expect(t.controller.join('a', empty('dir-a'))).rejects.toBeInstanceOf(UnavailableError);
    expect(t.controller.current).toBeNull();
    expect(t.controller.blocked).toMatch(/waiting for b/);
    expect(await t.gauge()).toBe(1);
    const placed = await t.controller.join('b', empty('dir-b'));
    expect(placed.placement).toMatchObject({ role: 'standby', catchingUp: false });
    const config = await t.stored();
    expect(config).toMatchObject({ primary: a, standby: b, inSync: ['a', 'b'] });
    expect(config.clusterId).toMatch(/^[0-9a-f]{32}$/);
    expect((await t.controller.join('a', empty('dir-a'))).placement).toMatchObject({
      role: 'primary',
      clusterId: config.clusterId,
    });
    await t.controller.stop();
  });

  it('rebuilds from running nodes: the owner of the highest epoch holds the history and is the only member in sync', async () => {
    const admin = new FakeAdmin();
    admin.set('a:1', { role: 'standby', epoch: 6, epochPrimary: 'b', incarnation: 'dir-a' });
    admin.set('b:1', {
      role: 'primary',
      epoch: 6,
      epochPrimary: 'b',
      incarnation: 'dir-b',
      acknowledged: { epoch: 6, index: 10 },
    });
    const t = await setup({ admin, config: null, nodes: [a, b] });
    await t.controller.start();
    await t.run(200);
    const config = await t.stored();
    expect(config).toMatchObject({
      primary: b,
      standby: a,
      inSync: ['b'],
      epoch: 6,
      clusterId: cluster,
    });
    expect(t.admin.calls).toEqual([]); // b serves already
    await t.controller.stop();
  });

  it('a rebuilt configuration has a ballot above every member’s, which both running members store before anything is decided; its promotions carry it', async () => {
    const admin = runningPair(
      6,
      { ballot: { n: 4, id: 'old' } },
      { ballot: { n: 3, id: 'older' } },
    );
    const t = await setup({ admin, config: null, nodes: [a, b] });
    await t.controller.start();
    await t.run(200);
    const config = await t.stored();
    expect(config.ballot?.n).toBe(5);
    const ballot = config.ballot as Ballot;
    expect(admin.fences.sort()).toEqual([`a:1 5/${ballot.id}`, `b:1 5/${ballot.id}`]);
    expect(admin.statuses.get('b:1')?.ballot).toEqual(ballot);
    // b is added back in sync, then a dies: the failover's promotion carries the ballot.
    admin.set('b:1', { acknowledged: { epoch: 0, index: 0 } });
    await t.controller.addToInSync({
      primaryId: 'a',
      primaryIncarnation: 'dir-a',
      epoch: 6,
      standbyId: 'b',
      acknowledged: { epoch: 6, index: 10 },
      seq: 1,
    });
    admin.crash('a:1');
    await t.run(2000);
    expect(admin.promoteBallots).toEqual([ballot]);
    await t.controller.stop();
  });

  it('a member that stored a ballot the configuration’s does not beat (a late Fence of a controller that crashed while rebuilding): the configuration’s ballot goes above it', async () => {
    const ours = { n: 2, id: 'aaa' };
    const admin = new FakeAdmin();
    admin.set('b:1', { ballot: { n: 2, id: 'zzz' } });
    const t = await setup({ admin, config: seeded({ ballot: ours }) });
    await t.controller.start();
    await t.run(300);
    const raised = (await t.stored()).ballot as Ballot;
    expect(raised.n).toBe(3);
    // A promotion carries it, and b would obey it (a higher n than the one it stored).
    admin.crash('a:1');
    await t.run(2000);
    expect(admin.promoteBallots.at(-1)).toEqual(raised);
    await t.controller.stop();
  });

  it('a member that stored a higher ballot than the one picked (another controller created a configuration): no configuration, and the next attempt picks above it', async () => {
    const admin = runningPair(6);
    // b answers the fence with a ballot above it, as if stored by another controller.
    const fence = admin.fence.bind(admin);
    let raced = false;
    admin.fence = async (address, ballot) => {
      if (address === 'b:1' && !raced) {
        raced = true;
        admin.set('b:1', { ballot: { n: ballot.n + 1, id: 'other' } });
      }
      return fence(address, ballot);
    };
    const t = await setup({ admin, config: null, nodes: [a, b] });
    await t.controller.start();
    await t.run(100);
    expect(t.controller.blocked).toMatch(/b holds ballot 2\/other.*another controller/);
    await t.run(500);
    expect((await t.stored()).ballot?.n).toBe(3);
    await t.controller.stop();
  });

  it('waits when the other member reports an empty directory: it may have held a later history (simulator seed)', async () => {
    // b went on alone in a later epoch, then lost its disk; this controller lost its own. a's
    // log proves a began epoch 3, but not that nobody went further: serving from it handed
    // out acknowledged IDs again in the simulator.
    const admin = new FakeAdmin();
    admin.set('a:1', { role: 'primary', epoch: 3, epochPrimary: 'a', incarnation: 'dir-a' });
    admin.set('b:1', {
      role: 'standby',
      epoch: 0,
      epochPrimary: '',
      incarnation: 'dir-b-new',
      clusterId: '',
      lastIndex: 0,
      lastEpoch: 0,
    });
    const t = await setup({ admin, config: null, nodes: [a, b] });
    await t.controller.start();
    await t.run(200);
    expect(t.controller.current).toBeNull();
    expect(t.controller.blocked).toMatch(/b's directory is empty \(new or wiped\)/);
    expect(t.controller.blocked).toMatch(/--bootstrap/);
    await t.controller.stop();
  });

  it('waits while a member reports a promotion still under way (simulator seed 23799: two primaries of epoch 2)', async () => {
    // The controller that lost its disk had promoted b to epoch 2 (a was down); b's disk hung
    // in the promotion's meta write. Rebuilt from b's report (epoch 1 of a) the configuration
    // made a primary, which began epoch 2 itself: both served epoch 2, each approved alone.
    const admin = runningPair(1, {}, { promotingEpoch: 2 });
    const t = await setup({ admin, config: null, nodes: [a, b] });
    await t.controller.start();
    await t.run(500);
    expect(t.controller.current).toBeNull();
    expect(t.controller.blocked).toMatch(/waiting for the promotion of b to epoch 2/);
    // Done: b leads epoch 2 and its log is in it; the rebuilt configuration follows b.
    admin.set('b:1', {
      role: 'primary',
      epoch: 2,
      epochPrimary: 'b',
      lastEpoch: 2,
      lastIndex: 11,
      promotingEpoch: 0,
      acknowledged: { epoch: 2, index: 11 },
    });
    await t.run(500);
    expect(await t.stored()).toMatchObject({ primary: b, standby: a, inSync: ['b'], epoch: 2 });
    await t.controller.stop();
  });

  it('waits while a member has not reported, or when no member proves it holds the history', async () => {
    const admin = new FakeAdmin();
    admin.up.set('b:1', false);
    const t = await setup({ admin, config: null, nodes: [a, b] });
    await t.controller.start();
    await t.run(500);
    expect(t.controller.current).toBeNull();
    expect(t.controller.blocked).toMatch(/waiting for b to report/);
    // b is back, but a's directory was wiped: b holds epoch 3 of a, which nobody began here.
    admin.up.set('b:1', true);
    admin.set('a:1', {
      role: 'standby',
      epoch: 0,
      epochPrimary: '',
      incarnation: 'dir-a2',
      clusterId: '',
      lastIndex: 0,
      lastEpoch: 0,
    });
    await t.run(300);
    expect(t.controller.current).toBeNull();
    expect(t.controller.blocked).toMatch(/no member proves it holds the history/);
    expect(t.admin.calls).toEqual([]);
    await t.controller.stop();
  });

  it('--node flags that contradict the stored configuration are refused; --update-addresses applies new addresses', async () => {
    const storage = new FaultStorage();
    const moved = { id: 'b', address: 'b:2' };
    const refused = await setup({ storage, nodes: [a, moved] });
    await expect(refused.controller.start()).rejects.toThrow(ConfigError);
    await expect(refused.controller.start()).rejects.toThrow(/--update-addresses/);
    const other = await setup({
      storage,
      nodes: [a, { id: 'c', address: 'c:1' }],
      updateAddresses: true,
    });
    await expect(other.controller.start()).rejects.toThrow(/contradicts the stored configuration/);
    const applied = await setup({ storage, nodes: [a, moved], updateAddresses: true });
    await applied.controller.start();
    expect((await applied.stored()).standby).toEqual(moved);
    await applied.controller.stop();
    const plain = await setup({ storage });
    await plain.controller.start(); // no --node: the stored configuration
    expect(plain.controller.current?.standby).toEqual(moved);
    await plain.controller.stop();
  });
});
