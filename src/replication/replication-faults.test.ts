import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CorruptionError,
  InvalidArgumentError,
  NotPrimaryError,
  ProtocolError,
  ReplicationAbortedError,
  StaleEpochError,
  TooLargeError,
  UnavailableError,
  type TallyError,
} from '../core/errors';
import { replicationMessageBytesMax } from '../core/limits';
import type { TallyNode } from '../node/node';
import type { AllocateResult, CounterNode } from '../node/types';
import { alloc } from '../testing/node-harness';
import { Pair, recordKey, walRecords } from '../testing/replication-harness';
import { encodeAllocate } from '../wal/record';
import { protocolVersion, type ToPrimary, type ToStandby } from './protocol';

const pairs: Pair[] = [];
afterEach(async () => {
  for (const pair of pairs.splice(0)) await pair.close();
});

async function servingPair(seed: number, extra = {}): Promise<Pair> {
  const pair = new Pair(seed, {}, extra);
  pairs.push(pair);
  await pair.startStandby();
  const primary = await pair.startPrimary();
  await vi.waitFor(() => expect(primary.status().state).toBe('serving'), { timeout: 10_000 });
  return pair;
}

/** A hand-driven replication stream into `node`: what it sends back and how it ends. */
function rawSession(node: CounterNode) {
  const replies: ToPrimary[] = [];
  let closedWith: TallyError | null | undefined;
  const events = node.openReplication(
    { send: (m) => replies.push(m), close: (err) => (closedWith = err ?? null) },
    'test',
  );
  return {
    replies,
    send: (m: ToStandby) => events.onMessage(m),
    /** Resolves with the error the standby ended the stream with. */
    ended: () =>
      vi.waitFor(
        () => {
          if (closedWith === undefined) throw new Error('still open');
          return closedWith;
        },
        { timeout: 5000 },
      ),
  };
}

function allocRecords(epoch: number, firstIndex: number, n: number): Buffer {
  const buf = Buffer.alloc(n * 64);
  let at = 0;
  for (let i = 0; i < n; i++)
    at += encodeAllocate(buf, at, epoch, firstIndex + i, 'ids', 1_000_000 + i, 1);
  return buf.subarray(0, at);
}

describe('standby refuses bad replication input and leaves its log untouched', () => {
  async function standbyWithLog() {
    const pair = await servingPair(7);
    await alloc(pair.primary as CounterNode, 'ids', 2);
    // A restarted primary begins epoch 2, so the standby holds an epoch with one below it.
    await (pair.primary as CounterNode).close();
    const primary = await pair.startPrimary();
    await vi.waitFor(() => expect(primary.status().state).toBe('serving'), { timeout: 10_000 });
    for (let i = 0; i < 5; i++) await alloc(primary, 'ids', 2);
    const held = (pair.standby as CounterNode).status();
    await (pair.primary as CounterNode).close();
    pair.primary = null;
    const before = (await walRecords(pair.standbyDisk)).map(recordKey);
    const untouched = async () => {
      const standby = pair.standby as CounterNode;
      expect(standby.status().lastIndex).toBe(held.lastIndex);
      expect(standby.status().epoch).toBe(held.epoch);
      expect(standby.status().state).toBe('serving');
      expect((await walRecords(pair.standbyDisk)).map(recordKey)).toEqual(before);
    };
    return { pair, held, untouched, standby: pair.standby as CounterNode };
  }

  /** A Hello as the standby's own primary would send it (its epoch nonce and directory). */
  const hello = (epoch: number, primaryId = 'primary', standby?: CounterNode) => {
    const meta = standby === undefined ? undefined : (standby as TallyNode).meta;
    return {
      kind: 'hello',
      protocolVersion,
      primaryId,
      epoch,
      primaryAddress: 'x:1',
      epochNonce: meta?.epochNonce ?? '',
      clusterId: '',
      primaryIncarnation: meta?.primaryIncarnation ?? '',
      idFloor: 0,
    } as const;
  };

  it('a Hello from a lower epoch, or the same epoch of another primary: StaleEpochError', async () => {
    const { held, untouched, standby } = await standbyWithLog();
    for (const message of [hello(held.epoch - 1), hello(held.epoch, 'mallory')]) {
      const s = rawSession(standby);
      s.send(message);
      expect(await s.ended()).toBeInstanceOf(StaleEpochError);
      expect(s.replies).toEqual([]);
    }
    await untouched();
  });

  it('an Append before Hello, or a Hello of another protocol version: ProtocolError', async () => {
    const { held, untouched, standby } = await standbyWithLog();
    const a = rawSession(standby);
    a.send({
      kind: 'append',
      epoch: held.epoch,
      prevIndex: held.lastIndex,
      prevEpoch: held.epoch,
      recordCount: 1,
      records: allocRecords(held.epoch, held.lastIndex + 1, 1),
      primaryLastIndex: held.lastIndex + 1,
      lastEpoch: held.epoch,
      commitIndex: 0,
    });
    expect(await a.ended()).toBeInstanceOf(ProtocolError);
    const b = rawSession(standby);
    b.send({ ...hello(held.epoch, 'primary', standby), protocolVersion: protocolVersion + 1 });
    expect(await b.ended()).toBeInstanceOf(ProtocolError);
    await untouched();
  });

  it('a gap, a CRC-broken record, an oversize batch, a bad snapshot: refused, nothing written', async () => {
    const { held, untouched, standby } = await standbyWithLog();
    const append = (prevIndex: number, records: Buffer, count: number) =>
      ({
        kind: 'append',
        epoch: held.epoch,
        prevIndex,
        prevEpoch: held.epoch,
        recordCount: count,
        records,
        primaryLastIndex: prevIndex + count,
        lastEpoch: held.epoch,
        commitIndex: 0,
      }) as const;
    const broken = Buffer.from(allocRecords(held.epoch, held.lastIndex + 1, 3));
    const at = broken.length - 20; // inside the last record's body: its CRC fails
    broken[at] = (broken[at] as number) ^ 0x40;
    const oversize = Buffer.alloc(replicationMessageBytesMax + 1);
    const cases: Array<[ToStandby, new (...a: never[]) => TallyError]> = [
      [
        append(held.lastIndex + 5, allocRecords(held.epoch, held.lastIndex + 6, 2), 2),
        ReplicationAbortedError,
      ],
      [append(held.lastIndex, broken, 3), CorruptionError],
      [append(held.lastIndex, oversize, 1), TooLargeError],
      [
        {
          kind: 'installSnapshot',
          epochs: [],
          epoch: held.epoch,
          index: 1,
          indexEpoch: 1,
          counters: [['NOT valid!', 5]],
          floor: 0,
        },
        InvalidArgumentError,
      ],
    ];
    for (const [message, expected] of cases) {
      const s = rawSession(standby);
      s.send(hello(held.epoch, 'primary', standby));
      s.send(message);
      expect(await s.ended(), message.kind).toBeInstanceOf(expected);
      expect(s.replies.map((r) => r.kind)).toEqual(['helloReply']);
    }
    await untouched();
  });
});

describe('failures of the primary or the link', () => {
  it('the primary crashed after the standby fsynced a batch but before its own fsync: it steps down rather than cut the batch', async () => {
    const pair = await servingPair(11);
    const acked: AllocateResult[] = [];
    for (let i = 0; i < 5; i++) acked.push(await alloc(pair.primary as CounterNode, 'ids', 10));
    // The next batch is written and sent, then its local fdatasync fails: the node stops.
    pair.primaryDisk.failOn('datasync', 'EIO', /\.wal$/, 1);
    const lost = await alloc(pair.primary as CounterNode, 'ids', 10).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(UnavailableError);
    const standby = pair.standby as CounterNode;
    const primaryLast = (pair.primary as CounterNode).status().lastIndex;
    await vi.waitFor(() => expect(standby.status().lastIndex).toBe(primaryLast + 1));
    const standbyAhead = standby.status().namespaces.find((n) => n.name === 'ids')?.lastId;
    expect(standbyAhead).toBe(60); // the unacknowledged batch is on the standby only
    await (pair.primary as CounterNode).close();
    pair.primaryDisk = pair.primaryDisk.crash(); // its un-fsynced write is gone
    const primary = await pair.startPrimary();
    // The primary cannot tell this batch (never acknowledged) from one a disk lost after it
    // was acknowledged: it does not have the standby cut it, it steps down.
    await vi.waitFor(() => expect(primary.status().state).toBe('fenced'), { timeout: 10_000 });
    expect(primary.status().namespaces.find((n) => n.name === 'ids')?.lastId).toBe(50);
    expect(standby.status().lastIndex).toBe(primaryLast + 1);
    expect(standby.status().namespaces.find((n) => n.name === 'ids')?.lastId).toBe(60);
    // Promoted, the standby serves above the batch; the old primary follows it.
    await standby.promote(standby.status().epoch + 1);
    const next = await alloc(standby, 'ids', 1);
    expect(next.first).toBe(61);
    expect(acked.every((a) => a.first + a.count <= 51)).toBe(true);
    await pair.close();
  });

  it('a snapshot install interrupted by a crash is discarded at restart and redone', async () => {
    const small = { segmentSizeBytes: 4096, checkpointRecords: 50 };
    const pair = await servingPair(19, small);
    const primary = pair.primary as CounterNode;
    const acked: AllocateResult[] = [];
    for (let i = 0; i < 200; i++) acked.push(await alloc(primary, 'ids', 1));
    await primary.checkpoint(); // compacted: a new standby needs the snapshot
    await (pair.standby as CounterNode).close();
    pair.standbyDisk = new (pair.primaryDisk.constructor as new () => typeof pair.standbyDisk)();
    // The install writes the snapshot, then fails creating the new WAL: the node stops and
    // its disk "crashes". Restarted, the snapshot without a WAL must not look like a lost log.
    pair.net.partition();
    const failing = await pair.startStandby(small);
    pair.standbyDisk.failOn('create', 'EIO', /\.wal$/, 1);
    pair.net.heal();
    await expect(failing.failed).resolves.toBeInstanceOf(Error);
    await failing.close();
    pair.standbyDisk = pair.standbyDisk.crash();
    const standby = await pair.startStandby(small);
    await alloc(primary, 'ids', 1);
    await vi.waitFor(() => expect(standby.status().lastIndex).toBe(primary.status().lastIndex), {
      timeout: 10_000,
    });
    expect(standby.status().replication?.catchingUp).toBe(false);
    expect(standby.status().namespaces).toEqual(primary.status().namespaces);
  });

  it('standby unreachable: requests wait, then UNAVAILABLE, never acknowledged; healed, it resumes', async () => {
    const pair = await servingPair(13, { ackWaitMs: 300 });
    const primary = pair.primary as CounterNode;
    const before = await alloc(primary, 'ids', 1);
    pair.net.partition();
    const during = await Promise.all(
      Array.from({ length: 20 }, () => alloc(primary, 'ids', 1).catch((e: unknown) => e)),
    );
    expect(during.every((r) => r instanceof UnavailableError)).toBe(true);
    pair.net.heal();
    // The primary reconnects with backoff; once it has, allocations are acknowledged again.
    const after = await vi.waitFor(() => alloc(primary, 'ids', 1), { timeout: 10_000 });
    expect(after.first).toBeGreaterThan(before.first);
    const standby = pair.standby as CounterNode;
    expect(standby.status().lastIndex).toBeGreaterThanOrEqual(after.index);
  });

  it('a standby promoted with a new standby address reports it and waits for that standby', async () => {
    const pair = await servingPair(23);
    const standby = pair.standby as CounterNode;
    await alloc(pair.primary as CounterNode, 'ids', 1);
    const promoted = await standby.promote(standby.status().epoch + 1, { standby: 'spare:7402' });
    expect(promoted.role).toBe('primary');
    expect(standby.status().replication?.peer).toBe('spare:7402');
    // Its standby is not there (the harness routes it back to itself, which refuses): no acks.
    const refused = await alloc(standby, 'ids', 1).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UnavailableError);
  });

  it('after the standby is promoted the old primary is fenced: queued and new requests fail', async () => {
    const pair = await servingPair(17);
    const primary = pair.primary as CounterNode;
    const standby = pair.standby as CounterNode;
    await alloc(primary, 'ids', 1);
    const epoch = standby.status().epoch + 1;
    const promoted = await standby.promote(epoch);
    expect(promoted).toMatchObject({ epoch, role: 'standalone' });
    await vi.waitFor(() => expect(primary.status().state).toBe('fenced'));
    const refused = await alloc(primary, 'ids', 1).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NotPrimaryError);
    const fresh = await alloc(standby, 'ids', 1);
    expect(fresh.first).toBe(2);
    expect(fresh.epoch).toBe(epoch);
    await expect(standby.promote(epoch + 1)).rejects.toThrow(/only a standby/);
  });
});
