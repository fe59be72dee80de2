/** A primary and a standby in one process, each on its own fault-injecting disk, joined by a FaultNetwork. */
import { UnavailableError } from '../core/errors';
import type { NodeOptions } from '../node/node';
import { refuseReplication } from '../replication/protocol';
import type { CounterNode } from '../node/types';
import { inspectDataDir, type InspectedRecord } from '../wal/inspect';
import { FaultNetwork, type FaultPlan } from './fault-network';
import { FaultStorage } from './fault-storage';
import { openFaultNode, testDataDir } from './node-harness';

export const primaryAddress = 'primary:7400';
export const standbyAddress = 'standby:7401';

export class Pair {
  primaryDisk = new FaultStorage();
  standbyDisk = new FaultStorage();
  primary: CounterNode | null = null;
  standby: CounterNode | null = null;
  readonly net: FaultNetwork;

  constructor(
    seed: number,
    plan: FaultPlan = {},
    private readonly extra: Partial<NodeOptions> = {},
  ) {
    // With extra.clock (a SimClock) the network delivers in the nodes' virtual time too.
    this.net = new FaultNetwork(seed, plan, extra.clock);
  }

  async startStandby(extra: Partial<NodeOptions> = {}): Promise<CounterNode> {
    this.standby = await openFaultNode(this.standbyDisk, {
      id: 'standby',
      role: 'standby',
      // Promoted with a standby address, it dials through the same network (to the standby).
      dial: (target) => this.net.dialer(target, () => this.accept(target)),
      ...this.extra,
      ...extra,
    });
    return this.standby;
  }

  /** Starts the primary (it serves once the standby accepted its epoch; not awaited here). */
  async startPrimary(extra: Partial<NodeOptions> = {}): Promise<CounterNode> {
    this.primary = await openFaultNode(this.primaryDisk, {
      id: 'primary',
      role: 'primary',
      standby: standbyAddress,
      advertiseAddress: primaryAddress,
      dial: (target) => this.net.dialer(target, () => this.accept(target)),
      replicationAckTimeoutMs: 400,
      ackWaitMs: 5000,
      ...this.extra,
      ...extra,
    });
    return this.primary;
  }

  /** Streams reach the node at `target`: 'primary:7400' is the first node, anything else the second. */
  private accept(target: string) {
    return (channel: Parameters<CounterNode['openReplication']>[0], peer: string) => {
      const node = target === primaryAddress ? this.primary : this.standby;
      if (node === null) {
        return refuseReplication(channel, new UnavailableError('harness: connection refused'));
      }
      return node.openReplication(channel, peer);
    };
  }

  async close(): Promise<void> {
    await this.primary?.close();
    await this.standby?.close();
    this.net.stop();
  }
}

/** Every record in a node's WAL (durable view of its disk), in index order. */
export async function walRecords(disk: FaultStorage): Promise<InspectedRecord[]> {
  const out: InspectedRecord[] = [];
  await inspectDataDir(testDataDir, (r) => out.push(r), disk);
  return out;
}

/** A record's identity and content, without where it sits on disk. */
export function recordKey(r: InspectedRecord): string {
  return `${r.index}/${r.epoch}/${r.type}/${r.namespace ?? r.nodeId}/${r.first ?? ''}/${r.count ?? ''}`;
}
