/** Shared helpers for tests that run a node on the fault-injecting storage. */
import pino from 'pino';
import { createMetrics } from '../core/metrics';
import { openNode, type NodeOptions } from '../node/node';
import type { AllocateResult, CounterNode } from '../node/types';
import type { FaultStorage } from './fault-storage';

export const testDataDir = '/data';
const silent = pino({ level: 'silent' });

export function faultNodeOptions(
  storage: FaultStorage,
  extra: Partial<NodeOptions> = {},
): NodeOptions {
  return {
    id: 'n1',
    dataDir: testDataDir,
    logger: silent,
    metrics: createMetrics({ defaults: false }),
    storage,
    lock: false,
    segmentSizeBytes: 8192,
    ...extra,
  };
}

export function openFaultNode(
  storage: FaultStorage,
  extra: Partial<NodeOptions> = {},
): Promise<CounterNode> {
  return openNode(faultNodeOptions(storage, extra));
}

export function alloc(
  node: CounterNode,
  namespace: string,
  count: number,
  deadline?: number,
): Promise<AllocateResult> {
  return new Promise((resolve, reject) =>
    node.allocate(namespace, count, deadline, (err, res) =>
      err ? reject(err) : resolve(res as AllocateResult),
    ),
  );
}

/** Highest acknowledged ID per namespace, updated as acknowledgements arrive. */
export class AckLog {
  readonly highest = new Map<string, number>();

  record(namespace: string, r: AllocateResult): void {
    const last = r.first + r.count - 1;
    if (last > (this.highest.get(namespace) ?? 0)) this.highest.set(namespace, last);
  }

  copy(): Map<string, number> {
    return new Map(this.highest);
  }
}

/** Allocates and records the acknowledgement; failures are returned, not thrown. */
export async function tracked(
  node: CounterNode,
  acks: AckLog,
  namespace: string,
  count: number,
): Promise<void> {
  try {
    acks.record(namespace, await alloc(node, namespace, count));
  } catch {
    // An unacknowledged request may leave a gap; the checks only concern acknowledged IDs.
  }
}
