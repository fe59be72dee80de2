/**
 * A node that loses its disk, or gets an old copy of it back, with real processes (a
 * controller, a and b on free ports of 127.0.0.1, each test in its own temp dir); plus a lost
 * standby followed by a primary restart, and a switchover whose target dies mid-promotion.
 *
 * Every allocation is recorded (invoke, then ack or failure) and the history must hold no ID
 * acknowledged twice and keep real-time order; a node that serves at the end must count at or
 * above every acknowledged ID. Failures are expected while nodes are down; handing out an ID
 * again is never acceptable.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  closeControllerClients,
  kill,
  restartBeforeFailover,
  settled,
  startCluster,
  untilIn,
  untilInSync,
  untilPrimary,
  type Cluster,
  dumpMembersOnFailure,
} from './cluster-process';
import {
  clientOf,
  closeRecorders,
  recorder,
  type Recorder,
  counterOf,
  expectCleanHistory,
  expectServingCountersCover,
  reissued,
} from './recorded-alloc';
import {
  assertBuilt,
  killChildren,
  nodeStatus,
  removeTempDirs,
  runCli,
  sleep,
  spawnCli,
  standbyCaughtUp,
  startPair,
  startPrimary,
  stop as stopNode,
  tempDir,
  until,
} from './serve-process';

beforeAll(assertBuilt);
afterEach(async (ctx) => {
  dumpMembersOnFailure(ctx.task.result?.state === 'fail');
  closeRecorders();
  closeControllerClients();
  await killChildren();
  await removeTempDirs();
});

/**
 * Load through a client given both addresses until `n` allocations invoked from now on were
 * acknowledged (at most timeoutMs); returns the IDs acknowledged in that time.
 */
async function serveAgain(
  cl: Cluster,
  rec: Recorder,
  n: number,
  what: string,
  timeoutMs = 30_000,
): Promise<number[]> {
  const mark = rec.history.mark();
  const load = rec.load(clientOf(cl), 2, 2000);
  try {
    await untilIn(
      cl,
      what,
      () => Promise.resolve(rec.ackedSince(mark).length >= n ? true : null),
      timeoutMs,
    );
  } finally {
    await load.stop();
  }
  return rec.ackedSince(mark).map((op) => op.first as number);
}

/** The cluster serves again through b (a holds none of the history), above every acknowledged ID. */
async function expectServedByB(cl: Cluster, rec: Recorder): Promise<void> {
  const after = await serveAgain(cl, rec, 20, '20 allocations after a lost its disk');
  await expectCleanHistory(cl, rec);
  expect(Math.min(...after)).toBeGreaterThan(20);
  const config = await cl.config();
  expect(config.primary.id).toBe('b');
  expect(await counterOf(config.primary.address)).toBeGreaterThanOrEqual(rec.maxAcked());
}

/** A failover timeout long enough for a killed node to restart before any failover. */
const longFailoverTimeout = { controllerArgs: { '--failover-timeout-ms': '5000' } };

const clusterFile = (cl: Cluster): string => path.join(cl.dir, 'controller', 'cluster.json');

describe('disk loss and stale disks (real processes)', () => {
  it('W1: the promoted standby acknowledged alone, then lost its disk: it must not serve from nothing, and the old primary (behind) must not either — no ID handed out twice', async () => {
    const cl = await startCluster();
    const rec = recorder();
    await rec.must(cl.nodes.a.address, 10);
    await kill(cl.nodes.a.child, 'SIGKILL');
    await untilIn(cl, 'b promoted, alone in sync', async () => {
      const [s, c] = [await nodeStatus(cl.nodes.b.address), await cl.config()];
      const alone = c.primary.id === 'b' && c.inSync.length === 1 && c.inSync[0] === 'b';
      return s.role === 'primary' && s.state === 'serving' && alone ? true : null;
    });
    await rec.must(cl.nodes.b.address, 10); // acknowledged by b alone
    await kill(cl.nodes.b.child, 'SIGKILL');
    await cl.wipe('b'); // the disk is replaced
    cl.startNode('b'); // a still down
    await settled(cl.nodes.b);
    const max = rec.maxAcked();
    const both = { a: cl.nodes.a.address, b: cl.nodes.b.address };
    const withB = await rec.observe(both, 4000);
    expect(reissued(withB, max), 'b restarted on an empty data dir, a down').toEqual([]);
    cl.startNode('a'); // its dir intact, but behind what b acknowledged alone
    await settled(cl.nodes.a);
    const withA = await rec.observe(both, 4000);
    expect(reissued(withA, max), 'a restarted too (behind b)').toEqual([]);
    // The cluster says why it does not serve and who holds the history: nobody that is up.
    const status = await runCli(['status', '--controller', cl.controller]);
    expect(status.stdout).toMatch(/^history\s+\(no member/m);
    expect(status.stdout).toMatch(
      /^NOT SERVING\s+primary b .*no member that holds every acknowledged record/m,
    );
    // The operator knows b's disk is gone for good: a is forced, skipping ahead of anything
    // the lost history can have handed out.
    const forced = await runCli([
      'promote',
      '--controller',
      cl.controller,
      '--node',
      'a',
      '--force',
      '--skip-ahead',
      '1000000',
    ]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(
      /forced: a is primary of epoch \d+; every counter skipped ahead by 1000000/,
    );
    const after = await serveAgain(cl, rec, 10, '10 allocations after the forced promotion');
    expect(Math.min(...after)).toBeGreaterThan(1_000_000);
    // A namespace the survivor never saw starts above the skip too (the floor).
    const fresh = await rec.onNamespace(cl.nodes.a.address, 'never.seen');
    expect(fresh.first).toBeGreaterThan(1_000_000);
    expect((await cl.config()).lastFailover).toMatchObject({ kind: 'forced', toNode: 'a' });
    await expectCleanHistory(cl, rec);
    await expectServingCountersCover(cl, rec);
  }, 90_000);

  it('W2a without a controller (--role primary/standby): the primary restarted on a wiped directory is refused by its standby and hands out nothing', async () => {
    const pair = await startPair();
    const rec = recorder();
    await rec.must(pair.primary.target, 20);
    await standbyCaughtUp(pair);
    await stopNode(pair.primary);
    await fs.promises.rm(pair.primaryDir, { recursive: true, force: true });
    const restarted = await startPrimary(pair.primaryDir, pair.standby.target);
    await until(
      'the wiped primary fenced by its standby',
      async () => ((await nodeStatus(restarted.target)).state === 'fenced' ? true : null),
      20_000,
    );
    const max = rec.maxAcked();
    const window = await rec.observe(
      { primary: restarted.target, standby: pair.standby.target },
      3000,
    );
    expect(reissued(window, max), 'the wiped primary, restarted').toEqual([]);
    expect(window.every((op) => op.first === undefined)).toBe(true);
    expect(restarted.stderr()).toMatch(/wiped or replaced/);
    expect(await counterOf(pair.standby.target)).toBe(max); // its log is untouched
    expect(rec.history.violations()).toEqual([]);
  }, 60_000);

  it('W2a: the primary of a young pair loses its disk and restarts at once: it must not serve from scratch; the cluster serves again through b, every ID unique', async () => {
    const cl = await startCluster(undefined, {}, longFailoverTimeout);
    const rec = recorder();
    await rec.must(cl.nodes.a.address, 20); // b holds epoch 1 of a and all of these
    await restartBeforeFailover(cl, 'a', {}, () => cl.wipe('a'));
    await expectServedByB(cl, rec);
  }, 90_000);

  it('W2b: the primary restarted once (b holds epoch 2 of a), then loses its disk and restarts at once: the cluster serves again through b (not stuck with two standbys)', async () => {
    const cl = await startCluster(undefined, {}, longFailoverTimeout);
    const rec = recorder();
    await rec.must(cl.nodes.a.address, 10);
    await restartBeforeFailover(cl, 'a'); // dir intact: a proposes epoch 2 and b accepts it
    await untilPrimary(cl, 'a');
    await untilInSync(cl);
    await rec.must(cl.nodes.a.address, 10);
    await untilInSync(cl);
    await restartBeforeFailover(cl, 'a', {}, () => cl.wipe('a'));
    await expectServedByB(cl, rec);
  }, 90_000);

  it('L1: the idle standby dies, then the primary restarts: the controller approves it alone and it serves again above every earlier ID', async () => {
    const cl = await startCluster();
    const rec = recorder();
    const before = await rec.must(cl.nodes.a.address, 10);
    await untilInSync(cl);
    await kill(cl.nodes.b.child, 'SIGKILL');
    await kill(cl.nodes.a.child, 'SIGKILL');
    cl.startNode('a'); // b stays down
    await untilIn(
      cl,
      'a serving alone, approved by the controller (inSync = [a])',
      async () => {
        const [s, c] = [await nodeStatus(cl.nodes.a.address), await cl.config()];
        const alone = c.primary.id === 'a' && c.inSync.length === 1 && c.inSync[0] === 'a';
        return s.role === 'primary' && s.state === 'serving' && alone ? true : null;
      },
      20_000,
    );
    const after = await rec.must(cl.nodes.a.address, 10);
    expect(Math.min(...after)).toBeGreaterThan(Math.max(...before));
    await expectCleanHistory(cl, rec);
    await expectServingCountersCover(cl, rec);
  }, 90_000);

  it('S1: the switchover target dies after the controller stored its promotion: tally switchover fails, and the stepped-down primary serves again', async () => {
    const cl = await startCluster(undefined, {
      TALLY_FAILPOINTS: 'controller.beforePromote=sleep(3000)',
    });
    const rec = recorder();
    const before = await rec.must(cl.nodes.a.address, 10);
    await untilInSync(cl);
    const run = runCli(['switchover', '--controller', cl.controller]);
    await untilIn(
      cl,
      'promotion of b stored',
      async () => {
        const c = JSON.parse(await fs.promises.readFile(clusterFile(cl), 'utf8')) as {
          config: { promoting: boolean; primary: { id: string } };
        };
        return c.config.promoting && c.config.primary.id === 'b' ? true : null;
      },
      10_000,
    );
    await kill(cl.nodes.b.child, 'SIGKILL'); // the controller sleeps before calling Promote
    const r = await run;
    const output = `${r.stdout}${r.stderr}`;
    expect.soft(r.code, `tally switchover exit code; output: ${output}`).not.toBe(0);
    expect
      .soft(output, 'tally switchover output')
      .toMatch(/did not|fell back|not serve|primary again/i);
    await untilPrimary(cl, 'a', 20_000);
    const after = await rec.must(cl.nodes.a.address, 10);
    expect(Math.min(...after)).toBeGreaterThan(Math.max(...before));
    await expectCleanHistory(cl, rec);
    await expectServingCountersCover(cl, rec);
  }, 90_000);

  it('old-copy: the standby restarted from an old copy of its own dir must not be promoted (it misses acknowledged IDs); with a back, new IDs are above all of them', async () => {
    const cl = await startCluster();
    const rec = recorder();
    await rec.must(cl.nodes.a.address, 50);
    await untilInSync(cl);
    await kill(cl.nodes.b.child, 'SIGKILL');
    const copy = path.join(await tempDir('tally-old-copy-'), 'b');
    await fs.promises.cp(cl.dataDir('b'), copy, { recursive: true }); // b is dead: consistent
    cl.startNode('b');
    await untilInSync(cl);
    await rec.must(cl.nodes.a.address, 50); // acknowledged once b fsynced them
    await sleep(500);
    await kill(cl.nodes.b.child, 'SIGKILL');
    await fs.promises.rm(cl.dataDir('b'), { recursive: true, force: true });
    await fs.promises.cp(copy, cl.dataDir('b'), { recursive: true });
    await kill(cl.nodes.a.child, 'SIGKILL');
    cl.startNode('b'); // only b, from the old copy
    await settled(cl.nodes.b);
    const max = rec.maxAcked();
    const window = await rec.observe({ b: cl.nodes.b.address, a: cl.nodes.a.address }, 4000);
    expect(reissued(window, max), 'b restarted from an old copy, a down').toEqual([]);
    cl.startNode('a');
    const after = await serveAgain(cl, rec, 10, '10 allocations with a back');
    expect(Math.min(...after)).toBeGreaterThan(max);
    const cfg = await cl.config();
    if (cfg.primary.id !== 'a') {
      console.log('CFG', JSON.stringify(cfg));
      await sleep(1000);
      console.log('CTL', cl.controllerChild.stderr());
      console.log('A', cl.nodes.a.child.stderr());
      console.log('B', cl.nodes.b.child.stderr());
    }
    expect(cfg.primary.id).toBe('a');
    await expectCleanHistory(cl, rec);
    await expectServingCountersCover(cl, rec);
  }, 90_000);

  it('both copies and the controller lost: the documented procedure (a standby forced with a skip-ahead, then a fresh controller) never hands out an acknowledged ID again', async () => {
    const cl = await startCluster();
    const rec = recorder();
    await rec.must(cl.nodes.a.address, 30);
    await untilInSync(cl);
    await kill(cl.controllerChild, 'SIGKILL');
    await kill(cl.nodes.a.child, 'SIGKILL');
    await kill(cl.nodes.b.child, 'SIGKILL');
    await cl.wipe('a');
    await cl.wipe('b');
    await fs.promises.rm(path.join(cl.dir, 'controller'), { recursive: true, force: true });
    // 1. a alone, as a standby on its empty directory; 2. forced with the skip-ahead.
    const alone = spawnCli([
      'serve',
      '--id',
      'a',
      '--data-dir',
      cl.dataDir('a'),
      '--role',
      'standby',
      '--listen',
      cl.nodes.a.address,
      '--metrics-listen',
      '127.0.0.1:0',
    ]);
    await until('a up as a standby', async () => (await nodeStatus(cl.nodes.a.address)) ?? null);
    const forced = await runCli([
      'promote',
      '--target',
      cl.nodes.a.address,
      '--epoch',
      '1',
      '--force',
      '--skip-ahead',
      '1000000',
    ]);
    expect(forced.code, forced.stderr).toBe(0);
    alone.proc.kill('SIGTERM');
    expect((await alone.exited).code).toBe(0);
    // 3. A fresh controller told that a holds the history (--bootstrap, a first), and both
    // nodes. (Without --bootstrap it waits: b's empty directory may be a disk wiped after
    // holding a later history, which is what the simulator found.)
    cl.startController({}, ['--bootstrap']);
    cl.startNode('a');
    cl.startNode('b');
    const after = await serveAgain(cl, rec, 10, '10 allocations after the procedure');
    expect(Math.min(...after)).toBeGreaterThan(1_000_000);
    expect((await cl.config()).primary.id).toBe('a');
    await untilInSync(cl);
    await expectCleanHistory(cl, rec);
    await expectServingCountersCover(cl, rec);
  }, 90_000);
});
