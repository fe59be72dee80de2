/**
 * The failover controller with real processes: a controller and two `tally serve
 * --controller` nodes on free ports of 127.0.0.1, each with its own temp dir.
 */
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ControllerClient } from '../../src/server/controller-client';
import {
  allocate,
  assertBuilt,
  counterClient,
  freePort,
  killChildren,
  nodeStatus,
  removeTempDirs,
  spawnCli,
  tempDir,
  until,
  type Child,
} from './serve-process';

beforeAll(assertBuilt);
const clients: ControllerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await killChildren();
  await removeTempDirs();
});

interface Cluster {
  dir: string;
  controller: string;
  nodes: Record<'a' | 'b', { address: string; child: Child }>;
  startNode(id: 'a' | 'b'): Child;
  config(): ReturnType<ControllerClient['getConfig']>;
}

async function startCluster(): Promise<Cluster> {
  const dir = await tempDir('tally-ctl-');
  const [c, a, b] = [await freePort(), await freePort(), await freePort()];
  const controller = `127.0.0.1:${c}`;
  const address = { a: `127.0.0.1:${a}`, b: `127.0.0.1:${b}` };
  spawnCli([
    'controller',
    '--data-dir',
    path.join(dir, 'controller'),
    '--listen',
    controller,
    '--metrics-listen',
    '127.0.0.1:0',
    '--node',
    `a=${address.a}`,
    '--node',
    `b=${address.b}`,
    '--probe-interval-ms',
    '100',
    '--failover-timeout-ms',
    '500',
  ]);
  const startNode = (id: 'a' | 'b'): Child => {
    const child = spawnCli([
      'serve',
      '--id',
      id,
      '--data-dir',
      path.join(dir, id),
      '--listen',
      address[id],
      '--metrics-listen',
      '127.0.0.1:0',
      '--controller',
      controller,
    ]);
    cluster.nodes[id] = { address: address[id], child };
    return child;
  };
  const client = new ControllerClient(controller);
  clients.push(client);
  const cluster: Cluster = {
    dir,
    controller,
    nodes: {} as Cluster['nodes'],
    startNode,
    config: () => client.getConfig(),
  };
  startNode('a');
  startNode('b');
  await until('a serving as primary', async () => {
    const s = await nodeStatus(address.a);
    return s.role === 'primary' && s.state === 'serving' ? s : null;
  });
  return cluster;
}

async function allocOn(address: string, n: number): Promise<number[]> {
  const client = counterClient(address);
  try {
    const firsts: number[] = [];
    for (let i = 0; i < n; i++) firsts.push(Number((await allocate(client, 'ids', 1)).first));
    return firsts;
  } finally {
    client.close();
  }
}

function kill(child: Child, signal: NodeJS.Signals): Promise<unknown> {
  child.proc.kill(signal);
  return signal === 'SIGKILL' ? child.exited : Promise.resolve();
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
});
