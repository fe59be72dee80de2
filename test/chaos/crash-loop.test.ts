/**
 * Crash loop: a real `tally serve` under concurrent unary and stream load on several
 * namespaces is SIGKILLed at random moments, restarted on the same data dir, and the whole
 * client-side history is checked for the invariants (history.ts). The seed is printed and
 * can be replayed with CRASH_SEED=<n>.
 */
import type * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import type { CounterClient } from '../../src/generated/tally/v1/Counter';
import type { AllocateResponse__Output } from '../../src/generated/tally/v1/AllocateResponse';
import {
  adminClient,
  assertBuilt,
  counterClient,
  killChildren,
  removeTempDirs,
  startServe,
  tempDir,
} from '../integration/serve-process';
import { History, checkHistory } from './history';

const kills = Number(process.env.CRASH_KILLS ?? 25);
const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
const namespaces = ['short', 'links', 'orders.eu'];

/** mulberry32: small seeded PRNG so a failing run can be replayed. */
function prng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Load {
  stop(): Promise<void>;
}

function unaryWorker(client: CounterClient, history: History, rand: () => number): Load {
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      const ns = namespaces[Math.floor(rand() * namespaces.length)] as string;
      const count = 1 + Math.floor(rand() * 5);
      const op = history.invoke(ns);
      await new Promise<void>((resolve) => {
        client.allocate({ namespace: ns, count }, { deadline: Date.now() + 5000 }, (err, res) => {
          if (err === null && res !== undefined) history.ack(op, Number(res.first), res.count);
          else history.fail(op);
          resolve();
        });
      });
    }
  };
  const done = loop();
  return {
    stop: async () => {
      running = false;
      await done;
    },
  };
}

function streamWorker(
  client: CounterClient,
  history: History,
  rand: () => number,
  inFlight: number,
): Load {
  const call = client.allocateStream({ deadline: Date.now() + 60_000 });
  const pending = new Map<string, ReturnType<History['invoke']>>();
  let next = 1;
  let running = true;
  let ended!: () => void;
  const done = new Promise<void>((resolve) => (ended = resolve));
  const send = (): void => {
    if (!running) return;
    const ns = namespaces[Math.floor(rand() * namespaces.length)] as string;
    const id = String(next++);
    pending.set(id, history.invoke(ns));
    call.write({ namespace: ns, count: 1 + Math.floor(rand() * 3), correlationId: id });
  };
  call.on('data', (r: AllocateResponse__Output) => {
    const op = pending.get(r.correlationId);
    if (op === undefined) return;
    pending.delete(r.correlationId);
    if (r.error === null || r.error === undefined) history.ack(op, Number(r.first), r.count);
    else history.fail(op);
    send();
  });
  const finish = (): void => {
    running = false;
    for (const op of pending.values()) history.fail(op);
    pending.clear();
    ended();
  };
  call.on('error', (_e: grpc.ServiceError) => finish());
  call.on('end', finish);
  for (let i = 0; i < inFlight; i++) send();
  return {
    stop: async () => {
      running = false;
      call.end();
      await done;
    },
  };
}

async function lastIds(target: string): Promise<Map<string, number>> {
  const admin = adminClient(target);
  const status = await new Promise<{ namespaces: Array<{ name: string; lastId: string }> }>(
    (resolve, reject) =>
      admin.status({}, { deadline: Date.now() + 5000 }, (err, res) =>
        err || !res ? reject(err) : resolve(res),
      ),
  );
  admin.close();
  return new Map(status.namespaces.map((n) => [n.name, Number(n.lastId)]));
}

afterAll(async () => {
  await killChildren();
  await removeTempDirs();
});

describe('crash loop', () => {
  it(`SIGKILL under load ${kills} times never loses or reissues an acknowledged ID (seed ${seed})`, async () => {
    assertBuilt();
    const rand = prng(seed);
    const dataDir = await tempDir('tally-crash-');
    const history = new History();
    const args = ['--checkpoint-records', '3000', '--segment-size-bytes', String(256 * 1024)];
    let acksBeforeKills = 0;
    for (let round = 0; round < kills; round++) {
      const server = await startServe(dataDir, args);
      // Never backwards: the recovered counters cover everything acknowledged so far.
      const recovered = await lastIds(server.target);
      for (const [ns, highest] of history.highestAcked()) {
        expect(
          recovered.get(ns) ?? 0,
          `round ${round} ${ns} (seed ${seed})`,
        ).toBeGreaterThanOrEqual(highest);
      }
      const client = counterClient(server.target);
      const loads = [
        ...Array.from({ length: 6 }, () => unaryWorker(client, history, rand)),
        streamWorker(client, history, rand, 16),
        streamWorker(client, history, rand, 16),
      ];
      const ackedAtStart = history.acked().length;
      await new Promise((r) => setTimeout(r, 100 + rand() * 400));
      server.proc.kill('SIGKILL');
      const exit = await server.exited;
      expect(exit.signal).toBe('SIGKILL');
      await Promise.all(loads.map((l) => l.stop()));
      client.close();
      // The load really ran while the node was killed (not an idle node).
      if (history.acked().length > ackedAtStart) acksBeforeKills++;
    }
    expect(acksBeforeKills).toBe(kills);
    const violations = checkHistory(history.ops);
    expect(violations.slice(0, 10), `seed ${seed}`).toEqual([]);
    expect(history.acked().length).toBeGreaterThan(kills * 50);
  }, 300_000);
});
