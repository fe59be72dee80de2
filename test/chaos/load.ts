/**
 * Load generators for chaos tests: unary and stream clients on several namespaces that record
 * every invocation and outcome in a History (history.ts), and a status reader.
 */
import type * as grpc from '@grpc/grpc-js';
import type { CounterClient } from '../../src/generated/tally/v1/Counter';
import type { AllocateResponse__Output } from '../../src/generated/tally/v1/AllocateResponse';
import { adminClient } from '../integration/serve-process';
import type { TallyClient } from '../../src/client';
import type { History } from './history';
import { seededRandom } from '../../src/testing/random';
import { until } from '../integration/serve-process';

export const namespaces = ['short', 'links', 'orders.eu'];

/** Seeded, so a failing run can be replayed. */
export const prng = seededRandom;

export interface Load {
  stop(): Promise<void>;
}

export function unaryWorker(
  client: CounterClient,
  history: History,
  rand: () => number,
  tag?: string,
): Load {
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      const ns = namespaces[Math.floor(rand() * namespaces.length)] as string;
      const count = 1 + Math.floor(rand() * 5);
      const op = history.invoke(ns, tag);
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

export function streamWorker(
  client: CounterClient,
  history: History,
  rand: () => number,
  inFlight: number,
  tag?: string,
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
    pending.set(id, history.invoke(ns, tag));
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

/**
 * `loops` concurrent allocate() loops through the client library, each call recorded in the
 * history (a rejected call counts as failed: not acknowledged).
 */
export function clientWorker(
  client: TallyClient,
  history: History,
  rand: () => number,
  loops: number,
  countMax = 3,
): Load {
  let running = true;
  const workers = Array.from({ length: loops }, async () => {
    while (running) {
      const ns = namespaces[Math.floor(rand() * namespaces.length)] as string;
      const op = history.invoke(ns);
      try {
        const a = await client.allocate(ns, 1 + Math.floor(rand() * countMax), {
          deadlineMs: 20_000,
        });
        history.ack(op, a.first, a.count);
      } catch {
        history.fail(op);
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

/** Waits until at least `more` further allocations in the history were acknowledged. */
export async function progress(history: History, more: number, what: string): Promise<void> {
  const target = history.acked().length + more;
  await until(what, () => Promise.resolve(history.acked().length >= target ? true : null), 60_000);
}

export async function lastIds(target: string): Promise<Map<string, number>> {
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
