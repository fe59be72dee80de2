import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../core/metrics';
import { FaultStorage } from '../testing/fault-storage';
import { openNode, type NodeOptions } from './node';
import type { AllocateResult, CounterNode } from './types';
import { TallyError } from '../core/errors';

const logger = pino({ level: 'silent' });
const dataDir = '/data';

export function nodeOptions(storage: FaultStorage, extra: Partial<NodeOptions> = {}): NodeOptions {
  return { id: 'n1', dataDir, logger, metrics: createMetrics({ defaults: false }), storage, lock: false, segmentSizeBytes: 8192, ...extra };
}

export function alloc(node: CounterNode, ns: string, count: number, deadline?: number): Promise<AllocateResult> {
  return new Promise((resolve, reject) =>
    node.allocate(ns, count, deadline, (err, res) => (err ? reject(err) : resolve(res as AllocateResult))),
  );
}

describe('node', () => {
  it('allocates increasing IDs and keeps them across a clean restart', async () => {
    const storage = new FaultStorage();
    const node = await openNode(nodeOptions(storage));
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => alloc(node, i % 2 ? 'a' : 'b', 3)));
    const firstsA = results.filter((_, i) => i % 2).map((r) => r.first);
    expect(firstsA).toEqual(Array.from({ length: 150 }, (_, i) => 1 + 3 * i));
    await node.close();
    const again = await openNode(nodeOptions(storage));
    expect((await alloc(again, 'a', 1)).first).toBe(451);
    expect(again.status().epoch).toBe(2);
    await again.close();
  });
});
