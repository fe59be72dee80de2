/**
 * Allocations recorded in a History (test/chaos/history.ts) for cluster tests that break
 * nodes: every call is an invoke and then an ack or a failure — a failure is expected while a
 * node is down and never throws. One namespace ('ids'), one ID per call.
 */
import type * as grpc from '@grpc/grpc-js';
import { expect } from 'vitest';
import { TallyClient } from '../../src/client';
import type { CounterClient } from '../../src/generated/tally/v1/Counter';
import { History, type Operation } from '../chaos/history';
import { lastIds } from '../chaos/load';
import { describeCluster, type Cluster } from './cluster-process';
import { counterClient, nodeStatus, sleep } from './serve-process';

export const ns = 'ids';

/** Reconnect quickly to a node that comes back on the same address. */
const channelOptions: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 500,
};

export interface Load {
  stop(): Promise<void>;
}

export class Recorder {
  readonly history = new History();
  private readonly clients = new Map<string, CounterClient>();

  private client(address: string): CounterClient {
    let c = this.clients.get(address);
    if (c === undefined) {
      c = counterClient(address, channelOptions);
      this.clients.set(address, c);
    }
    return c;
  }

  /** One allocation on the node at `address`, recorded (tagged with `tag`, e.g. the node id). */
  on(address: string, deadlineMs = 1500, tag = address): Promise<Operation> {
    return this.onNamespace(address, ns, deadlineMs, tag);
  }

  /** One allocation in `namespace` on the node at `address`, recorded. */
  onNamespace(
    address: string,
    namespace: string,
    deadlineMs = 1500,
    tag = address,
  ): Promise<Operation> {
    const op = this.history.invoke(namespace, tag);
    return new Promise((resolve) => {
      this.client(address).allocate(
        { namespace, count: 1 },
        { deadline: Date.now() + deadlineMs },
        (err, res) => {
          if (err === null && res !== undefined) this.history.ack(op, Number(res.first), res.count);
          else this.history.fail(op);
          resolve(op);
        },
      );
    });
  }

  /** `n` allocations on `address` that must succeed (setup): the IDs, or a throw. */
  async must(address: string, n: number): Promise<number[]> {
    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      const op = await this.on(address, 10_000);
      if (op.first === undefined) throw new Error(`test: setup allocation on ${address} failed`);
      ids.push(op.first);
    }
    return ids;
  }

  /**
   * For `ms`, tries one allocation after another on each node in turn (`{ tag: address }`, a
   * short deadline each); returns the operations made.
   */
  async observe(nodes: Record<string, string>, ms: number): Promise<Operation[]> {
    const ops: Operation[] = [];
    const end = Date.now() + ms;
    while (Date.now() < end) {
      for (const [tag, address] of Object.entries(nodes)) {
        ops.push(await this.on(address, 1000, tag));
      }
      await sleep(50);
    }
    return ops;
  }

  /** `loops` concurrent allocate() loops through the client library, recorded. */
  load(client: TallyClient, loops = 2, deadlineMs = 2000): Load {
    let running = true;
    const workers = Array.from({ length: loops }, async () => {
      while (running) {
        const op = this.history.invoke(ns, 'client');
        try {
          const a = await client.allocate(ns, 1, { deadlineMs });
          this.history.ack(op, a.first, a.count);
        } catch {
          this.history.fail(op);
          await sleep(20);
        }
      }
    });
    return {
      stop: async () => {
        running = false;
        await Promise.all(workers);
      },
    };
  }

  /** Acknowledged operations invoked after the logical time `mark` (History.mark()). */
  ackedSince(mark: number): Operation[] {
    return this.history.acked().filter((op) => op.invokedAt > mark);
  }

  /** The highest acknowledged ID so far (0 if none). */
  maxAcked(): number {
    return this.history.highestAcked().get(ns) ?? 0;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

/**
 * "node X handed out ID" for each acknowledged op in `ops` whose ID is at or below `max` (the
 * first 10, then how many more).
 */
export function reissued(ops: Operation[], max: number): string[] {
  const bad = ops
    .filter((op) => op.first !== undefined && op.first <= max)
    .map((op) => `node ${op.tag ?? '?'} handed out ${op.first} (max acknowledged: ${max})`);
  return bad.length > 10 ? [...bad.slice(0, 10), `… and ${bad.length - 10} more`] : bad;
}

/** The node's counter for `ns` (Admin.Status namespaces lastId). */
export async function counterOf(address: string): Promise<number> {
  return (await lastIds(address)).get(ns) ?? 0;
}

/** No ID acknowledged twice, real-time order kept (the first 10 violations, with the cluster). */
export async function expectCleanHistory(cl: Cluster, rec: Recorder): Promise<void> {
  const violations = rec.history.violations().slice(0, 10);
  const now = violations.length > 0 ? ` — ${await describeCluster(cl)}` : '';
  expect(violations, `history: no ID acknowledged twice, real-time order${now}`).toEqual([]);
}

/** Every node serving as primary counts at or above every acknowledged ID. */
export async function expectServingCountersCover(cl: Cluster, rec: Recorder): Promise<void> {
  for (const id of ['a', 'b'] as const) {
    const address = cl.nodes[id].address;
    const s = await nodeStatus(address).catch(() => null);
    if (s?.role !== 'primary' || s.state !== 'serving') continue;
    expect(await counterOf(address), `node ${id}'s counter`).toBeGreaterThanOrEqual(rec.maxAcked());
  }
}

const recorders: Recorder[] = [];
const clients: TallyClient[] = [];

/** A Recorder closed by closeRecorders() (afterEach). */
export function recorder(): Recorder {
  const r = new Recorder();
  recorders.push(r);
  return r;
}

/** A client library instance given both nodes' addresses, closed by closeRecorders(). */
export function clientOf(cl: Cluster): TallyClient {
  const c = new TallyClient({ addresses: [cl.nodes.a.address, cl.nodes.b.address] });
  clients.push(c);
  return c;
}

export function closeRecorders(): void {
  for (const c of clients.splice(0)) c.close();
  for (const r of recorders.splice(0)) r.close();
}
