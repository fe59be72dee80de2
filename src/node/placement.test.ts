import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { DataDirError, UnavailableError, WrongRoleError } from '../core/errors';
import { SimClock } from '../testing/sim-clock';
import type { Meta } from './data-dir';
import {
  applyPlacement,
  configPollMs,
  controllerRetryMs,
  deposedBy,
  followController,
  joinReport,
  placeByController,
  type PlacementAuthority,
} from './placement';
import type { CounterNode, JoinReport, Placement } from './types';

const silent = pino({ level: 'silent' });

const meta = (over: Partial<Meta> = {}): Meta => ({
  formatVersion: 1,
  nodeId: 'a',
  incarnation: 'inc-a',
  epoch: 3,
  role: 'primary',
  ...over,
});

const report: JoinReport = joinReport(meta(), { lastIndex: 10, lastEpoch: 3 });

/** A controller whose join answers are scripted, one per call. */
function scripted(answers: Array<Placement | Error>): PlacementAuthority & { joins: number } {
  const c = {
    address: 'ctl:1',
    joins: 0,
    join: (): Promise<Placement> => {
      const next = answers[c.joins++];
      if (next === undefined) throw new Error('no more answers scripted');
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
    getConfig: () => Promise.reject(new UnavailableError('not scripted')),
  };
  return c;
}

describe('joinReport', () => {
  it('reports a log whose torn tail was cut (and not yet compared) as catching up', () => {
    expect(report.catchingUp).toBe(false);
    expect(joinReport(meta({ tailCut: true }), { lastIndex: 10, lastEpoch: 3 }).catchingUp).toBe(
      true,
    );
    expect(joinReport(meta({ catchingUp: true }), { lastIndex: 0, lastEpoch: 0 })).toMatchObject({
      catchingUp: true,
      lastIndex: 0,
      nodeId: 'a',
      incarnation: 'inc-a',
      clusterId: '',
    });
  });
});

describe('applyPlacement', () => {
  const store = (m: Meta) => {
    const writes: Array<Partial<Meta>> = [];
    return {
      writes,
      current: m,
      set: (next: Partial<Meta>) => {
        writes.push(next);
        return Promise.resolve({ ...m, ...next });
      },
    };
  };

  it('refuses a directory of another cluster, naming both, and writes nothing', async () => {
    const s = store(meta({ clusterId: 'c1' }));
    const err = await applyPlacement(s, { role: 'standby', clusterId: 'c2' }, '/d').catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DataDirError);
    expect((err as Error).message).toMatch(/belongs to cluster c1.*runs cluster c2/);
    expect(s.writes).toEqual([]);
  });

  it('a primary placed as standby is catching up; a placement that changes nothing writes nothing', async () => {
    const turned = store(meta({ clusterId: 'c1' }));
    await applyPlacement(turned, { role: 'standby', clusterId: 'c1' }, '/d');
    expect(turned.writes).toEqual([
      { role: 'standby', catchingUp: true, snapshotInstall: undefined, clusterId: 'c1' },
    ]);
    const same = store(meta({ clusterId: 'c1' }));
    await applyPlacement(same, { role: 'primary', clusterId: 'c1' }, '/d');
    expect(same.writes).toEqual([]);
  });

  it('stores a higher controller ballot; refuses an older one (a controller on an old copy of its configuration) and writes nothing', async () => {
    const stored = { n: 3, id: 'ctl-3' };
    const higher = store(meta({ clusterId: 'c1', ballot: stored }));
    const newer = { n: 4, id: 'ctl-4' };
    await applyPlacement(higher, { role: 'primary', clusterId: 'c1', ballot: newer }, '/d');
    expect(higher.writes).toMatchObject([{ ballot: newer }]);
    const same = store(meta({ clusterId: 'c1', ballot: stored }));
    await applyPlacement(same, { role: 'primary', clusterId: 'c1', ballot: { ...stored } }, '/d');
    expect(same.writes).toEqual([]);
    for (const older of [
      { n: 2, id: 'ctl-9' },
      { n: 3, id: 'ctl-other' }, // the same n from another controller
      undefined, // a configuration from before ballots
    ]) {
      const s = store(meta({ clusterId: 'c1', ballot: stored }));
      const err = await applyPlacement(
        s,
        { role: 'primary', clusterId: 'c1', ballot: older },
        '/d',
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      expect((err as Error).message).toMatch(/older than 3\/ctl-3/);
      expect(s.writes).toEqual([]);
    }
  });
});

describe('placeByController', () => {
  it('waits out an unreachable controller (retrying every controllerRetryMs), then takes its answer', async () => {
    const clock = new SimClock(0);
    const ctl = scripted([
      new UnavailableError('down'),
      new UnavailableError('still building'),
      { role: 'standby', catchingUp: true, clusterId: 'c1' },
    ]);
    const placing = placeByController(ctl, silent, clock)(report);
    const placement = await clock.runUntilSettled(placing, 10 * controllerRetryMs);
    expect(placement).toEqual({ role: 'standby', catchingUp: true, clusterId: 'c1' });
    expect(ctl.joins).toBe(3);
    expect(clock.monotonicMs()).toBe(2 * controllerRetryMs);
  });

  it("rejects at once with the controller's refusal (not a member, another cluster)", async () => {
    const clock = new SimClock(0);
    const ctl = scripted([new WrongRoleError('node z is not a member of this cluster (a, b)')]);
    await expect(placeByController(ctl, silent, clock)(report)).rejects.toThrow(/not a member/);
    expect(ctl.joins).toBe(1);
  });
});

describe('deposedBy', () => {
  const config = { epoch: 5, promoting: false, primary: { id: 'b' } };
  it('names the new primary when another node is primary in an epoch above this one', () => {
    expect(deposedBy(config, 'a', { role: 'primary', epoch: 4 })).toBe(
      'the controller names b primary of epoch 5',
    );
  });
  it('decides nothing from a stale or unfinished configuration, or for this node or a standby', () => {
    expect(deposedBy(config, 'a', { role: 'primary', epoch: 5 })).toBeNull(); // read before
    expect(
      deposedBy({ ...config, promoting: true }, 'a', { role: 'primary', epoch: 4 }),
    ).toBeNull();
    expect(deposedBy(config, 'b', { role: 'primary', epoch: 4 })).toBeNull();
    expect(deposedBy(config, 'a', { role: 'standby', epoch: 4 })).toBeNull();
  });
});

describe('followController', () => {
  it('polls one at a time, passes the in-sync set, makes a deposed primary rejoin; stop() ends it', async () => {
    const clock = new SimClock(0);
    let configs = 0;
    let answer: ((c: Awaited<ReturnType<PlacementAuthority['getConfig']>>) => void) | null = null;
    const ctl: PlacementAuthority = {
      address: 'ctl:1',
      join: () => Promise.reject(new Error('unused')),
      getConfig: () => {
        configs++;
        return new Promise((resolve) => (answer = resolve));
      },
    };
    const inSyncSeen: string[][] = [];
    const rejoins: string[] = [];
    const node = {
      status: () => ({ role: 'primary', epoch: 4 }) as ReturnType<CounterNode['status']>,
      noteInSyncSet: (s: readonly string[]) => void inSyncSeen.push([...s]),
      rejoinAsStandby: (reason: string) => {
        rejoins.push(reason);
        return Promise.resolve();
      },
    };
    const stop = followController(ctl, node, 'a', clock);
    await clock.runUntil(3 * configPollMs);
    expect(configs).toBe(1); // the first poll has not answered: no second one
    (answer as unknown as (c: object) => void)({
      epoch: 5,
      promoting: false,
      primary: { id: 'b' },
      inSync: ['b'],
    });
    await clock.runUntil(4 * configPollMs);
    expect(inSyncSeen).toEqual([['b']]);
    expect(rejoins).toEqual(['the controller names b primary of epoch 5']);
    expect(configs).toBe(2);
    stop();
    await clock.runUntil(10 * configPollMs);
    expect(configs).toBe(2);
  });
});
