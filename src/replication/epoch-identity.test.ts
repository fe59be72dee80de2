/**
 * An epoch's identity is (number, primary id, nonce), and a standby knows the data directory of
 * the primary it follows: two different records never sit at the same (epoch, index) on two
 * nodes, and log matching never cuts what is known to be acknowledged — with or without a
 * controller. Driven by hand-made replication messages into a real standby node.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StaleEpochError } from '../core/errors';
import type { CounterNode } from '../node/types';
import { FaultStorage } from '../testing/fault-storage';
import { openFaultNode } from '../testing/node-harness';
import { encodeAllocate, encodeEpochStart } from '../wal/record';
import {
  protocolVersion,
  type Append,
  type Hello,
  type ToPrimary,
  type ToStandby,
} from './protocol';

const nodes: CounterNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.close().catch(() => undefined);
});

async function standby(): Promise<CounterNode> {
  const node = await openFaultNode(new FaultStorage(), { id: 'b', role: 'standby' });
  nodes.push(node);
  return node;
}

function hello(epoch: number, changes: Partial<Hello> = {}): Hello {
  return {
    kind: 'hello',
    protocolVersion,
    primaryId: 'a',
    epoch,
    primaryAddress: 'a:1',
    epochNonce: `n${epoch}`,
    clusterId: '',
    primaryIncarnation: 'dir-a',
    idFloor: 0,
    ...changes,
  };
}

/** An epoch-start record, then `n` allocations of one ID each. */
function term(
  epoch: number,
  prevIndex: number,
  prevEpoch: number,
  n: number,
  firstId: number,
): Append {
  const buf = Buffer.alloc(64 + n * 64);
  let at = encodeEpochStart(buf, 0, epoch, prevIndex + 1, 'a');
  for (let i = 0; i < n; i++) {
    at += encodeAllocate(buf, at, epoch, prevIndex + 2 + i, 'ids', firstId + i, 1);
  }
  return {
    kind: 'append',
    epoch,
    prevIndex,
    prevEpoch,
    recordCount: n + 1,
    records: buf.subarray(0, at),
    primaryLastIndex: prevIndex + n + 1,
    lastEpoch: epoch,
    commitIndex: 0,
  };
}

/** One replication stream into `node`; resolves the error it ended with, if any. */
function session(node: CounterNode) {
  const replies: ToPrimary[] = [];
  let closed: unknown;
  const events = node.openReplication(
    { send: (m) => replies.push(m), close: (e) => (closed = e ?? null) },
    'test',
  );
  return {
    replies,
    send: (m: ToStandby) => events.onMessage(m),
    ended: () =>
      vi.waitFor(() => (closed === undefined ? Promise.reject(new Error('open')) : closed)),
    acked: (n: number) => vi.waitFor(() => expect(replies.length).toBe(n)),
  };
}

describe('epoch identity on the standby', () => {
  it('refuses the same epoch number proposed again with another nonce once it holds records of that epoch (a primary that lost its log, or an old copy of its directory)', async () => {
    const b = await standby();
    const s1 = session(b);
    s1.send(hello(1));
    s1.send(term(1, 0, 0, 5, 1));
    await s1.acked(2);
    const s2 = session(b);
    s2.send(hello(1, { epochNonce: 'other' }));
    expect(await s2.ended()).toBeInstanceOf(StaleEpochError);
    expect(b.status().lastIndex).toBe(6); // untouched
  });

  it('accepts a new nonce for an epoch number that wrote nothing here (its primary crashed before persisting it)', async () => {
    const b = await standby();
    const s1 = session(b);
    s1.send(hello(1));
    s1.send(term(1, 0, 0, 3, 1));
    await s1.acked(2);
    const s2 = session(b);
    s2.send(hello(2)); // accepted, and nothing of epoch 2 written
    await s2.acked(1);
    const s3 = session(b);
    s3.send(hello(2, { epochNonce: 'retry' }));
    await s3.acked(1);
    s3.send({ ...term(2, 4, 1, 2, 4), epoch: 2 });
    await s3.acked(2);
    expect(b.status()).toMatchObject({ epoch: 2, lastIndex: 7 });
  });

  it('refuses a primary whose data directory is not the one it followed (wiped or replaced): it holds none of the history, so its log must not cut this one', async () => {
    const b = await standby();
    const s1 = session(b);
    s1.send(hello(1));
    s1.send(term(1, 0, 0, 5, 1));
    await s1.acked(2);
    const wiped = session(b);
    wiped.send(hello(2, { primaryIncarnation: 'dir-a-new' })); // a higher epoch, even
    const err = await wiped.ended();
    expect(err).toBeInstanceOf(StaleEpochError);
    expect((err as Error).message).toMatch(/wiped or replaced/);
    expect(b.status()).toMatchObject({ epoch: 1, lastIndex: 6 });
  });

  it('never cuts records a primary said were acknowledged, nor replaces them with an older snapshot', async () => {
    const b = await standby();
    const s1 = session(b);
    s1.send(hello(1));
    s1.send({ ...term(1, 0, 0, 9, 1), commitIndex: 8 });
    await s1.acked(2);
    // A primary (same directory, an old copy of it) whose log ends at index 4, in epoch 1.
    const old = session(b);
    old.send(hello(2));
    await old.acked(1);
    old.send({ ...term(2, 4, 1, 1, 100) });
    expect(await old.ended()).toBeInstanceOf(StaleEpochError); // fenced: it lost history
    const again = session(b);
    again.send(hello(2));
    await again.acked(1);
    again.send({
      kind: 'installSnapshot',
      epochs: [],
      epoch: 2,
      index: 4,
      indexEpoch: 1,
      counters: [['ids', 3]],
      floor: 0,
    });
    expect(await again.ended()).toBeInstanceOf(StaleEpochError);
    expect(b.status().lastIndex).toBe(10);
    // Above what was acknowledged, an unacknowledged suffix is still cut (log matching).
    const fine = session(b);
    fine.send(hello(3));
    await fine.acked(1);
    fine.send(term(3, 9, 1, 1, 200));
    await fine.acked(2);
    expect(b.status().lastIndex).toBe(11);
  });

  it("a primary whose history holds a forced skip-ahead this standby has not seen may cut below what it knew was acknowledged (the operator's force supersedes it), even from a new directory", async () => {
    const b = await standby();
    const s1 = session(b);
    s1.send(hello(1));
    s1.send({ ...term(1, 0, 0, 9, 1), commitIndex: 8 });
    await s1.acked(2);
    const forced = session(b);
    forced.send(hello(2, { primaryIncarnation: 'dir-a-new', idFloor: 1000 }));
    await forced.acked(1);
    forced.send({
      kind: 'installSnapshot',
      epochs: [],
      epoch: 2,
      index: 4,
      indexEpoch: 1,
      counters: [['ids', 1003]],
      floor: 1000,
    });
    await forced.acked(2);
    expect(b.status()).toMatchObject({ lastIndex: 4, idFloor: 1000 });
  });

  it('ignores a snapshot delivered again after the session went past it (simulator: a duplicate fenced the primary)', async () => {
    const b = await standby();
    const s1 = session(b);
    s1.send(hello(1));
    const snapshot: ToStandby = {
      kind: 'installSnapshot',
      epochs: [],
      epoch: 1,
      index: 4,
      indexEpoch: 1,
      counters: [['ids', 3]],
      floor: 0,
    };
    s1.send(snapshot);
    await s1.acked(2);
    s1.send({ ...term(1, 4, 1, 4, 100), commitIndex: 9 }); // 5: epoch start, 6..9
    await s1.acked(3);
    expect(b.status().lastIndex).toBe(9);
    s1.send(snapshot); // the network delivers the old message again
    const one = Buffer.alloc(64);
    const length = encodeAllocate(one, 0, 1, 10, 'ids', 200, 1);
    s1.send({
      kind: 'append',
      epoch: 1,
      prevIndex: 9,
      prevEpoch: 1,
      recordCount: 1,
      records: one.subarray(0, length),
      primaryLastIndex: 10,
      lastEpoch: 1,
      commitIndex: 9,
    });
    await s1.acked(4); // the session goes on: nothing refused, nothing thrown away
    expect(b.status().lastIndex).toBe(10);
  });
});
