/**
 * A controller and two `tally serve --controller` nodes (a, b) as real processes on free
 * ports of 127.0.0.1, each in its own temp dir; helpers to load and to kill them. Processes
 * are tracked by serve-process.ts (killChildren), controller clients by closeControllerClients.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { clusterArgs } from '../../src/cli/cluster';
import { parseHostPort } from '../../src/server/listen';
import { ControllerClient } from '../../src/server/controller-client';
import {
  allocate,
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

const clients: ControllerClient[] = [];
/** Every member process started by the clusters of the current test, by name. */
const members: Array<{ name: string; child: Child }> = [];

export function closeControllerClients(): void {
  for (const c of clients.splice(0)) c.close();
}

/**
 * For afterEach: when the test failed, prints the last lines each member process wrote to
 * stderr (its warn/error log), so a failure in CI says what the cluster did. Forgets them.
 */
export function dumpMembersOnFailure(failed: boolean, lines = 60): void {
  const started = members.splice(0);
  if (!failed) return;
  for (const m of started) {
    const tail = m.child.stderr().trimEnd().split('\n').slice(-lines).join('\n');
    console.log(`--- ${m.name} (pid ${m.child.proc.pid}) stderr, last ${lines} lines ---\n${tail}`);
  }
}

/** The afterEach of a cluster test: the members' logs if it failed, then everything stopped. */
export async function cleanUpClusterTest(failed: boolean): Promise<void> {
  dumpMembersOnFailure(failed);
  closeControllerClients();
  await killChildren();
  await removeTempDirs();
}

export interface Cluster {
  dir: string;
  controller: string;
  nodes: Record<'a' | 'b', { address: string; child: Child }>;
  controllerChild: Child;
  /** (Re)starts a node on its data dir; `env` e.g. TALLY_FAILPOINTS or grpc_proxy. */
  startNode(id: 'a' | 'b', env?: Record<string, string>): Child;
  /** A node's data dir (`dir/ID`). */
  dataDir(id: 'a' | 'b'): string;
  /**
   * Replaces a node's disk: its data dir is deleted (the contents of the directory it links to
   * when mapped by `dataDirs`). Kill the node first.
   */
  wipe(id: 'a' | 'b'): Promise<void>;
  /** (Re)starts the controller on its data dir; `env` e.g. TALLY_FAILPOINTS. */
  startController(env?: Record<string, string>, extraArgs?: string[]): Child;
  config(): ReturnType<ControllerClient['getConfig']>;
}

/**
 * Where the members run: by default all on 127.0.0.1 (free ports); a NetLab (chaos tests)
 * gives each its own network namespace and address.
 */
export interface Hosts {
  address(member: 'controller' | 'a' | 'b'): string;
  wrapper(member: 'controller' | 'a' | 'b'): string[];
}

export interface ClusterOptions {
  /**
   * Controller flags over the defaults (`--probe-interval-ms` 100, `--failover-timeout-ms`
   * 500), e.g. `{ '--failover-timeout-ms': '5000' }`.
   */
  controllerArgs?: Record<string, string>;
  /**
   * A node's data dir somewhere else (e.g. on a test file system): `dir/ID` is made a symlink to
   * it (created if missing) before the node first starts.
   */
  dataDirs?: Partial<Record<'a' | 'b', string>>;
  /** Environment of every node process (under startNode's own `env`), e.g. TALLY_CHECKPOINT_RECORDS. */
  nodeEnv?: Record<string, string>;
}

export async function startCluster(
  hosts?: Hosts,
  controllerEnv: Record<string, string> = {},
  options: ClusterOptions = {},
): Promise<Cluster> {
  const dir = await tempDir('tally-ctl-');
  for (const [id, target] of Object.entries(options.dataDirs ?? {})) {
    await fs.promises.mkdir(target, { recursive: true });
    await fs.promises.symlink(target, path.join(dir, id));
  }
  const controllerFlags: Record<string, string> = {
    '--probe-interval-ms': '100',
    '--failover-timeout-ms': '500',
    ...options.controllerArgs,
  };
  const at = async (member: 'controller' | 'a' | 'b', port: number): Promise<string> =>
    hosts ? `${hosts.address(member)}:${port}` : `127.0.0.1:${await freePort()}`;
  const wrapper = (member: 'controller' | 'a' | 'b'): string[] => hosts?.wrapper(member) ?? [];
  const controller = await at('controller', 7300);
  const address = { a: await at('a', 7400), b: await at('b', 7400) };
  const args = clusterArgs({
    dataDir: dir,
    address: { ...address, controller },
    metrics: { controller: '127.0.0.1:0', a: '127.0.0.1:0', b: '127.0.0.1:0' },
    controllerArgs: Object.entries(controllerFlags).flat(),
  });
  const startController = (env: Record<string, string> = {}, extraArgs: string[] = []): Child => {
    const child = spawnCli(
      [...args.controller, ...extraArgs],
      { LOG_LEVEL: 'info', ...env },
      wrapper('controller'),
    );
    cluster.controllerChild = child;
    members.push({ name: 'controller', child });
    return child;
  };
  const startNode = (id: 'a' | 'b', env: Record<string, string> = {}): Child => {
    const child = spawnCli(args[id], { ...options.nodeEnv, ...env }, wrapper(id));
    cluster.nodes[id] = { address: address[id], child };
    members.push({ name: `node ${id}`, child });
    return child;
  };
  const client = new ControllerClient(controller);
  clients.push(client);
  const cluster: Cluster = {
    dir,
    controller,
    nodes: {} as Cluster['nodes'],
    controllerChild: null as unknown as Child,
    startNode,
    dataDir: (id) => path.join(dir, id),
    wipe: async (id) => {
      const link = path.join(dir, id);
      const real = await fs.promises.realpath(link).catch(() => link);
      await fs.promises.rm(real, { recursive: true, force: true });
      if (real !== link) await fs.promises.mkdir(real); // the link stays: an empty disk
    },
    startController,
    config: () => client.getConfig(),
  };
  startController(controllerEnv);
  startNode('a');
  startNode('b');
  await until('a serving as primary', async () => {
    const s = await nodeStatus(address.a);
    return s.role === 'primary' && s.state === 'serving' ? s : null;
  });
  return cluster;
}

export async function allocOn(address: string, n: number): Promise<number[]> {
  const client = counterClient(address);
  try {
    const firsts: number[] = [];
    for (let i = 0; i < n; i++) firsts.push(Number((await allocate(client, 'ids', 1)).first));
    return firsts;
  } finally {
    client.close();
  }
}

export function kill(child: Child, signal: NodeJS.Signals): Promise<unknown> {
  child.proc.kill(signal);
  return signal === 'SIGKILL' ? child.exited : Promise.resolve();
}

/** Does something accept TCP connections at `address` (a starting node holds its port)? */
function accepts(address: string): Promise<boolean> {
  const { host, port } = parseHostPort(address);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/**
 * SIGKILLs node `id` and starts it again (`between` runs while it is down) before the
 * controller can act on the crash: the controller is paused until the new process holds the
 * node's port, as with a restart quicker than any failover (a crash the controller sees —
 * the port refusing, the standby's stream reset — is failed over at once).
 */
export async function restartBeforeFailover(
  cl: Cluster,
  id: 'a' | 'b',
  env: Record<string, string> = {},
  between: () => Promise<void> = () => Promise.resolve(),
): Promise<Child> {
  await kill(cl.controllerChild, 'SIGSTOP');
  try {
    await kill(cl.nodes[id].child, 'SIGKILL');
    await between();
    const child = cl.startNode(id, env);
    await until(`${id} holding its port again`, async () =>
      (await accepts(cl.nodes[id].address)) ? true : null,
    );
    return child;
  } finally {
    await kill(cl.controllerChild, 'SIGCONT');
  }
}

/** Waits until node `id` answers Status as a serving primary. */
export function untilPrimary(cl: Cluster, id: 'a' | 'b', timeoutMs = 30_000): Promise<true> {
  return untilIn(
    cl,
    `${id} serving as primary`,
    async () => {
      const s = await nodeStatus(cl.nodes[id].address);
      return s.role === 'primary' && s.state === 'serving' ? true : null;
    },
    timeoutMs,
  );
}

/**
 * Waits until both nodes are in the configured in-sync set and the configured standby holds
 * the primary's whole log, not catching up.
 */
export function untilInSync(cl: Cluster, timeoutMs = 30_000): Promise<true> {
  return untilIn(
    cl,
    'standby in sync and caught up',
    async () => {
      const c = await cl.config();
      if (c.inSync.length !== 2 || c.promoting) return null;
      const p = await nodeStatus(c.primary.address);
      const s = await nodeStatus(c.standby.address);
      const caughtUp = s.lastIndex === p.lastIndex && s.replication?.catchingUp === false;
      return p.state === 'serving' && s.role === 'standby' && caughtUp ? true : null;
    },
    timeoutMs,
  );
}

/**
 * Waits until the node answers Status or its process has exited (a node refusing to
 * start is an answer too), at most timeoutMs; never throws.
 */
export async function settled(
  node: { address: string; child: Child },
  timeoutMs = 10_000,
): Promise<void> {
  const up = until(`${node.address} answering`, () => nodeStatus(node.address), timeoutMs);
  await Promise.race([node.child.exited, up.catch(() => null)]);
}

/** One line on what the cluster looks like now (for failure messages). */
export async function describeCluster(cl: Cluster): Promise<string> {
  const node = async (id: 'a' | 'b'): Promise<string> => {
    try {
      const s = await nodeStatus(cl.nodes[id].address);
      const catchingUp = s.replication?.catchingUp ? ', catching up' : '';
      return `${id}: ${s.role} ${s.state}, epoch ${s.epoch} of ${s.epochPrimary || '?'}, lastIndex ${s.lastIndex}${catchingUp}`;
    } catch {
      return `${id}: no answer`;
    }
  };
  let config = 'controller: no answer';
  try {
    const c = await cl.config();
    config = `config v${c.version}: primary ${c.primary.id}, epoch ${c.epoch}, inSync [${c.inSync.join(',')}]${c.promoting ? ', promoting' : ''}${c.blocked ? `, blocked: ${c.blocked}` : ''}`;
  } catch {
    // reported as no answer
  }
  return `${await node('a')}; ${await node('b')}; ${config}`;
}

/** until(), whose timeout error also says what the cluster looks like. */
export async function untilIn<T>(
  cl: Cluster,
  what: string,
  probe: () => Promise<T | null>,
  timeoutMs = 30_000,
): Promise<T> {
  try {
    return await until(what, probe, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message} — ${await describeCluster(cl)}`);
  }
}
