/**
 * A controller and two `tally serve --controller` nodes (a, b) as real processes on free
 * ports of 127.0.0.1, each in its own temp dir; helpers to load and to kill them. Processes
 * are tracked by serve-process.ts (killChildren), controller clients by closeControllerClients.
 */
import { clusterArgs } from '../../src/cli/cluster';
import { ControllerClient } from '../../src/server/controller-client';
import {
  allocate,
  counterClient,
  freePort,
  nodeStatus,
  spawnCli,
  tempDir,
  until,
  type Child,
} from './serve-process';

const clients: ControllerClient[] = [];

export function closeControllerClients(): void {
  for (const c of clients.splice(0)) c.close();
}

export interface Cluster {
  dir: string;
  controller: string;
  nodes: Record<'a' | 'b', { address: string; child: Child }>;
  controllerChild: Child;
  startNode(id: 'a' | 'b'): Child;
  /** (Re)starts the controller on its data dir; `env` e.g. TALLY_FAILPOINTS. */
  startController(env?: Record<string, string>): Child;
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

export async function startCluster(
  hosts?: Hosts,
  controllerEnv: Record<string, string> = {},
): Promise<Cluster> {
  const dir = await tempDir('tally-ctl-');
  const at = async (member: 'controller' | 'a' | 'b', port: number): Promise<string> =>
    hosts ? `${hosts.address(member)}:${port}` : `127.0.0.1:${await freePort()}`;
  const wrapper = (member: 'controller' | 'a' | 'b'): string[] => hosts?.wrapper(member) ?? [];
  const controller = await at('controller', 7300);
  const address = { a: await at('a', 7400), b: await at('b', 7400) };
  const args = clusterArgs({
    dataDir: dir,
    address: { ...address, controller },
    metrics: { controller: '127.0.0.1:0', a: '127.0.0.1:0', b: '127.0.0.1:0' },
    controllerArgs: ['--probe-interval-ms', '100', '--failover-timeout-ms', '500'],
  });
  const startController = (env: Record<string, string> = {}): Child => {
    const child = spawnCli(args.controller, env, wrapper('controller'));
    cluster.controllerChild = child;
    return child;
  };
  const startNode = (id: 'a' | 'b'): Child => {
    const child = spawnCli(args[id], {}, wrapper(id));
    cluster.nodes[id] = { address: address[id], child };
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
