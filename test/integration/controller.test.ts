/**
 * The failover controller with real processes: a controller and two `tally serve
 * --controller` nodes on free ports of 127.0.0.1, each with its own temp dir.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TallyClient } from '../../src/client';
import { allocOn, cleanUpClusterTest, type Cluster, kill, startCluster } from './cluster-process';
import {
  allocate,
  assertBuilt,
  sleep,
  spawnCli,
  tempDir,
  counterClient,
  nodeStatus,
  runCli,
  until,
} from './serve-process';

beforeAll(assertBuilt);
afterEach((ctx) => cleanUpClusterTest(ctx.task.result?.state === 'fail'));

/**
 * One allocate() loop through the client library given both nodes: the first ID of each
 * acknowledged call, in order. `strict`: every call must succeed and get a higher ID than the
 * one before (no failures expected); otherwise failures are skipped.
 */
function sequentialLoad(cl: Cluster, strict: boolean): { firsts: number[]; stop(): Promise<void> } {
  const client = new TallyClient({ addresses: [cl.nodes.a.address, cl.nodes.b.address] });
  const firsts: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const call = client.allocate('ids', 1, { deadlineMs: 10_000 });
      const r = strict ? await call : await call.catch(() => null);
      if (r === null) continue;
      if (strict && firsts.length > 0) {
        expect(r.first).toBeGreaterThan(firsts[firsts.length - 1] as number);
      }
      firsts.push(r.first);
    }
  })();
  return {
    firsts,
    stop: async () => {
      running = false;
      await loop;
      client.close();
    },
  };
}

describe('controller with real processes', () => {
  it('SIGKILL of the primary: the in-sync standby is promoted, continues above every acknowledged ID, and the old primary rejoins in sync', async () => {
    const cl = await startCluster();
    const before = await allocOn(cl.nodes.a.address, 20);
    await kill(cl.nodes.a.child, 'SIGKILL');
    const promoted = await until('b promoted', async () => {
      const s = await nodeStatus(cl.nodes.b.address);
      return s.role === 'primary' && s.state === 'serving' ? s : null;
    });
    expect(Number(promoted.epoch)).toBeGreaterThan(1);
    const after = await allocOn(cl.nodes.b.address, 20);
    expect(Math.min(...after)).toBeGreaterThan(Math.max(...before));
    const config = await cl.config();
    expect(config).toMatchObject({ primary: { id: 'b' }, standby: { id: 'a' }, promoting: false });
    expect(config.lastFailover).toMatchObject({ kind: 'failover', fromNode: 'a', toNode: 'b' });
    // The old primary comes back as a standby, catches up, and is added back in sync.
    cl.startNode('a');
    await until('a back in sync', async () =>
      (await cl.config()).inSync.includes('a') ? true : null,
    );
    const a = await nodeStatus(cl.nodes.a.address);
    expect(a.role).toBe('standby');
    const more = await allocOn(cl.nodes.b.address, 5);
    await until('a holds every record', async () => {
      const [sa, sb] = [await nodeStatus(cl.nodes.a.address), await nodeStatus(cl.nodes.b.address)];
      return sa.lastIndex === sb.lastIndex ? true : null;
    });
    expect(Math.min(...more)).toBeGreaterThan(Math.max(...after));
  });

  it("SIGKILL of the standby: the primary degrades with the controller's approval and keeps acknowledging; the standby returns in sync", async () => {
    const cl = await startCluster();
    await allocOn(cl.nodes.a.address, 5);
    await kill(cl.nodes.b.child, 'SIGKILL');
    const alone = await allocOn(cl.nodes.a.address, 10); // waits ~degrade-after, then goes on
    expect(alone).toHaveLength(10);
    const degraded = await cl.config();
    expect(degraded.inSync).toEqual(['a']);
    expect(degraded.primary.id).toBe('a'); // never a failover for a lost standby
    cl.startNode('b');
    await until('b back in sync', async () =>
      (await cl.config()).inSync.includes('b') ? true : null,
    );
    const s = await nodeStatus(cl.nodes.a.address);
    expect(s.replication?.state).toBe('streaming');
  });

  it('SIGSTOP of the primary past the failover timeout: after SIGCONT it is fenced, acknowledges nothing from its old epoch, and rejoins as standby', async () => {
    const cl = await startCluster();
    const before = await allocOn(cl.nodes.a.address, 10);
    await kill(cl.nodes.a.child, 'SIGSTOP');
    await until('b promoted', async () => {
      const s = await nodeStatus(cl.nodes.b.address);
      return s.role === 'primary' && s.state === 'serving' ? s : null;
    });
    const onB = await allocOn(cl.nodes.b.address, 10);
    // A request sent to the stopped primary is read once it runs again.
    const client = counterClient(cl.nodes.a.address);
    const late = allocate(client, 'ids', 1).then(
      (r) => ({ ok: Number(r.first) }),
      (err: { code?: number }) => ({ code: err.code }),
    );
    await kill(cl.nodes.a.child, 'SIGCONT');
    const outcome = await late;
    client.close();
    expect(outcome).not.toHaveProperty('ok');
    await until('a rejoined as standby', async () =>
      (await nodeStatus(cl.nodes.a.address)).role === 'standby' ? true : null,
    );
    const all = [...before, ...onB];
    expect(new Set(all).size).toBe(all.length);
  });

  it('the controller SIGKILLed mid-promotion and restarted: it finishes the promotion it had stored, and the cluster converges', async () => {
    // The failpoint holds the controller between storing the promotion and calling Promote.
    const cl = await startCluster(undefined, {
      TALLY_FAILPOINTS: 'controller.beforePromote=sleep(60000)',
    });
    const before = await allocOn(cl.nodes.a.address, 10);
    await kill(cl.nodes.a.child, 'SIGKILL');
    const stored = path.join(cl.dir, 'controller', 'cluster.json');
    await until('promotion stored', async () => {
      const c = JSON.parse(await fs.promises.readFile(stored, 'utf8')) as {
        config: { promoting: boolean; primary: { id: string } };
      };
      return c.config.promoting && c.config.primary.id === 'b' ? true : null;
    });
    await kill(cl.controllerChild, 'SIGKILL');
    // Decided but not carried out: b is still a standby.
    expect((await nodeStatus(cl.nodes.b.address)).role).toBe('standby');
    cl.startController();
    await until('b promoted by the restarted controller', async () => {
      const s = await nodeStatus(cl.nodes.b.address);
      return s.role === 'primary' && s.state === 'serving' ? true : null;
    });
    const config = await until('promotion finished', async () => {
      const c = await cl.config();
      return c.promoting ? null : c;
    });
    expect(config).toMatchObject({ primary: { id: 'b' }, standby: { id: 'a' } });
    const after = await allocOn(cl.nodes.b.address, 10);
    expect(Math.min(...after)).toBeGreaterThan(Math.max(...before));
    cl.startNode('a');
    await until('a back in sync', async () =>
      (await cl.config()).inSync.includes('a') ? true : null,
    );
    expect((await nodeStatus(cl.nodes.a.address)).role).toBe('standby');
  });

  it('tally switchover under load: roles swap, every acknowledged ID is unique and later calls get higher IDs; the controller down does not stop allocations', async () => {
    const cl = await startCluster();
    const { firsts, stop } = sequentialLoad(cl, true);
    try {
      await until('load flowing', () => Promise.resolve(firsts.length > 50 ? true : null));
      const run = await runCli(['switchover', '--controller', cl.controller]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^switchover: a → b \(epoch \d+, \d+ ms\)/);
      const config = await cl.config();
      expect(config).toMatchObject({ primary: { id: 'b' }, inSync: ['b', 'a'], promoting: false });
      expect(config.lastFailover?.kind).toBe('switchover');
      expect((await nodeStatus(cl.nodes.a.address)).role).toBe('standby');
      const n = firsts.length;
      await until('load on b', () => Promise.resolve(firsts.length > n + 50 ? true : null));
      // The controller is only needed for changes: without it the pair keeps serving.
      await kill(cl.controllerChild, 'SIGKILL');
      const m = firsts.length;
      await until('load without the controller', () =>
        Promise.resolve(firsts.length > m + 200 ? true : null),
      );
    } finally {
      await stop();
    }
    expect(new Set(firsts).size).toBe(firsts.length);
  });

  it('the new primary and the controller both killed after the promotion, before it was confirmed: the node comes back as primary and the controller records it', async () => {
    const cl = await startCluster(undefined, {
      TALLY_FAILPOINTS: 'controller.afterPromote=sleep(60000)',
    });
    const before = await allocOn(cl.nodes.a.address, 10);
    await kill(cl.nodes.a.child, 'SIGKILL');
    await until('b promoted', async () => {
      const s = await nodeStatus(cl.nodes.b.address);
      return s.role === 'primary' && s.state === 'serving' ? true : null;
    });
    const onB = await allocOn(cl.nodes.b.address, 10); // acknowledged alone
    await kill(cl.controllerChild, 'SIGKILL'); // the promotion is still "promoting" on disk
    await kill(cl.nodes.b.child, 'SIGKILL');
    cl.startController();
    cl.startNode('b');
    await until('b serving as primary again', async () => {
      const s = await nodeStatus(cl.nodes.b.address);
      return s.role === 'primary' && s.state === 'serving' ? true : null;
    });
    const config = await until('promotion recorded', async () => {
      const c = await cl.config();
      return c.promoting ? null : c;
    });
    expect(config.primary.id).toBe('b');
    const after = await allocOn(cl.nodes.b.address, 10);
    expect(Math.min(...after)).toBeGreaterThan(Math.max(...before, ...onB));
  });

  it('SIGSTOP of the standby under load: the primary degrades once and does not flap between acknowledging alone and waiting while it is paused; resumed, it is back in sync', async () => {
    const cl = await startCluster();
    const { firsts, stop } = sequentialLoad(cl, false);
    try {
      await until('load flowing', () => Promise.resolve(firsts.length > 50 ? true : null));
      await kill(cl.nodes.b.child, 'SIGSTOP');
      await until('b out of the in-sync set', async () =>
        (await cl.config()).inSync.join() === 'a' ? true : null,
      );
      const n = firsts.length;
      // Paused, b keeps its connection open: it must not be waited for again.
      await until('load while b is paused', () =>
        Promise.resolve(firsts.length > n + 2000 ? true : null),
      );
      await sleep(3000);
      const degrades = cl.nodes.a.child.stderr().match(/replication: degraded:/g) ?? [];
      expect(degrades).toHaveLength(1);
      expect(cl.nodes.a.child.stderr()).not.toMatch(/standby streaming again/);
      await kill(cl.nodes.b.child, 'SIGCONT');
      await until('b back in sync', async () =>
        (await cl.config()).inSync.includes('b') ? true : null,
      );
    } finally {
      await stop();
    }
    expect(new Set(firsts).size).toBe(firsts.length);
  });

  it('a controller that lost its configuration rebuilds it from what the nodes prove (no new cluster), and failover works again once the standby is verified in sync', async () => {
    const cl = await startCluster();
    const before = await allocOn(cl.nodes.a.address, 20);
    const original = await cl.config();
    await kill(cl.controllerChild, 'SIGKILL');
    await fs.promises.rm(path.join(cl.dir, 'controller', 'cluster.json'));
    cl.startController();
    const rebuilt = await until('configuration rebuilt with b verified in sync', async () => {
      const c = await cl.config();
      return c.inSync.length === 2 ? c : null;
    });
    expect(rebuilt.clusterId).toBe(original.clusterId); // the nodes' cluster, not a new one
    expect(rebuilt.primary.id).toBe('a');
    expect(rebuilt.members.map((m) => m.incarnation)).toEqual(
      original.members.map((m) => m.incarnation),
    );
    await kill(cl.nodes.a.child, 'SIGKILL');
    await until('b promoted', async () => {
      const s = await nodeStatus(cl.nodes.b.address);
      return s.role === 'primary' && s.state === 'serving' ? s : null;
    });
    const after = await allocOn(cl.nodes.b.address, 10);
    expect(Math.min(...after)).toBeGreaterThan(Math.max(...before));
  });

  it('a controller that lost its configuration after a failover does not invent one: while the old primary is down it waits (the promoted node serves on); then the node that began the highest epoch stays primary', async () => {
    const cl = await startCluster();
    const before = await allocOn(cl.nodes.a.address, 10);
    const original = await cl.config();
    await kill(cl.nodes.a.child, 'SIGKILL');
    await until('b promoted', async () => {
      const s = await nodeStatus(cl.nodes.b.address);
      return s.role === 'primary' && s.state === 'serving' ? s : null;
    });
    const alone = await allocOn(cl.nodes.b.address, 10); // acknowledged by b alone
    await kill(cl.controllerChild, 'SIGKILL');
    await fs.promises.rm(path.join(cl.dir, 'controller', 'cluster.json'));
    cl.startController();
    // a has not reported: nothing is proven, so there is no configuration (not "a primary").
    await until('controller up, waiting for a', () =>
      cl.config().then(
        () => Promise.reject(new Error('test: a configuration was invented')),
        (err: Error) => (/waiting for a to report/.test(err.message) ? true : null),
      ),
    );
    const meanwhile = await allocOn(cl.nodes.b.address, 5); // the data path does not wait
    cl.startNode('a');
    const rebuilt = await until('rebuilt, a verified back in sync', async () => {
      const c = await cl.config();
      return c.inSync.length === 2 ? c : null;
    });
    expect(rebuilt).toMatchObject({ primary: { id: 'b' }, clusterId: original.clusterId });
    expect((await nodeStatus(cl.nodes.a.address)).role).toBe('standby');
    const after = await allocOn(cl.nodes.b.address, 5);
    expect(Math.min(...after)).toBeGreaterThan(Math.max(...before, ...alone, ...meanwhile));
  });

  it('the controller restarts from its stored configuration without --node; --node flags that contradict it are refused (exit 2) with how to change a member', async () => {
    const cl = await startCluster();
    await kill(cl.controllerChild, 'SIGKILL');
    const dataDir = path.join(cl.dir, 'controller');
    const moved = await runCli([
      'controller',
      '--data-dir',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
      '--node',
      `a=${cl.nodes.a.address}`,
      '--node',
      'b=127.0.0.1:1',
    ]);
    expect(moved.code).toBe(2);
    expect(moved.stderr).toMatch(/contradicts the stored configuration/);
    expect(moved.stderr).toMatch(/--update-addresses/);
    const fresh = await runCli(['controller', '--data-dir', await tempDir('tally-ctl-empty-')]);
    expect(fresh.code).toBe(2);
    expect(fresh.stderr).toMatch(/no stored configuration; give both members with --node/);
    // Without --node it serves from the stored configuration.
    const args = ['controller', '--data-dir', dataDir, '--listen', cl.controller];
    spawnCli([...args, '--metrics-listen', '127.0.0.1:0']);
    await until('controller back', async () =>
      (await cl.config()).primary.id === 'a' ? true : null,
    );
    expect((await allocOn(cl.nodes.a.address, 1)).length).toBe(1);
  });
});
