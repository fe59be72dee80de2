/**
 * Regressions from the replication review: each scenario once broke an invariant or liveness.
 */
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AssertionFailure, assert } from '../core/assert';
import { systemClock, systemRandom } from '../core/clock';
import { StaleEpochError, UnavailableError } from '../core/errors';
import type { AllocateResult, CounterNode } from '../node/types';
import { FaultStorage } from '../testing/fault-storage';
import { alloc, openFaultNode, testDataDir } from '../testing/node-harness';
import { Pair } from '../testing/replication-harness';
import { inspectDataDir, type InspectedRecord } from '../wal/inspect';
import { encodeAllocate, encodeEpochStart } from '../wal/record';
import {
  protocolVersion,
  type Append,
  type ChannelEvents,
  type ToPrimary,
  type ToStandby,
} from './protocol';
import { Receiver, ReceiverSession, type ReplicaLog } from './receiver';
import { Sender, type PrimaryLog, type SenderOptions } from './sender';

const pairs: Pair[] = [];
afterEach(async () => {
  for (const pair of pairs.splice(0)) await pair.close().catch(() => undefined);
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function servingPair(seed: number, standby = {}, primary = {}): Promise<Pair> {
  const pair = new Pair(seed);
  pairs.push(pair);
  await pair.startStandby(standby);
  const p = await pair.startPrimary(primary);
  await vi.waitFor(() => expect(p.status().state).toBe('serving'), { timeout: 10_000 });
  return pair;
}

function records(epoch: number, firstIndex: number, n: number, firstId: number): Buffer {
  const buf = Buffer.alloc(n * 80);
  let at = 0;
  for (let i = 0; i < n; i++) {
    at += encodeAllocate(buf, at, epoch, firstIndex + i, 'ids', firstId + i, 1);
  }
  return buf.subarray(0, at);
}

function append(epoch: number, prevIndex: number, prevEpoch: number, n: number): Append {
  return {
    kind: 'append',
    epoch,
    prevIndex,
    prevEpoch,
    recordCount: n,
    records: records(epoch, prevIndex + 1, n, prevIndex + 1),
    primaryLastIndex: prevIndex + n,
    lastEpoch: epoch,
    commitIndex: 0,
  };
}

function raw(node: CounterNode) {
  const replies: ToPrimary[] = [];
  let closed: unknown;
  const events = node.openReplication(
    { send: (m) => replies.push(m), close: (e) => (closed = e ?? null) },
    'test',
  );
  return { replies, send: (m: ToStandby) => events.onMessage(m), closed: () => closed };
}

const hello = (epoch: number, primaryId = 'A') =>
  ({
    kind: 'hello',
    protocolVersion,
    primaryId,
    epoch,
    primaryAddress: 'a:1',
    epochNonce: `nonce-${epoch}`,
    clusterId: '',
    primaryIncarnation: `dir-of-${primaryId}`,
    idFloor: 0,
  }) as const;

/**
 * A Sender on a hand-driven link: every session it opens is recorded (its events, to answer as
 * the standby would, and what was sent on it).
 */
function handDrivenSender(log: PrimaryLog, extra: Partial<SenderOptions> = {}) {
  const sessions: Array<{ events: ChannelEvents<ToPrimary>; sent: ToStandby[] }> = [];
  const sender = new Sender({
    dialer: {
      target: 'standby',
      open: (events) => {
        const session = { events, sent: [] as ToStandby[] };
        sessions.push(session);
        return { send: (m) => session.sent.push(m), close: () => undefined };
      },
    },
    log,
    epoch: 2,
    epochNonce: 'n',
    primaryId: 'p',
    primaryAddress: 'p:1',
    clusterId: '',
    primaryIncarnation: 'dir-of-p',
    commitIndex: () => 0,
    idFloor: () => 0,
    logger: pino({ level: 'silent' }),
    clock: systemClock,
    random: systemRandom,
    metrics: { ackSeconds() {}, batchBytes() {}, reconnected() {}, catchUpRecords() {} },
    onAck: () => undefined,
    onAccepted: () => undefined,
    onFenced: () => undefined,
    ...extra,
  });
  return { sender, sessions };
}

/** A standby's Hello reply for an empty log. */
const emptyStandby: ToPrimary = {
  kind: 'helloReply',
  nodeId: 's',
  firstIndex: 1,
  lastIndex: 0,
  epochs: [],
  snapshotIndex: 0,
  snapshotEpoch: 0,
  acknowledgedFloor: 0,
  confirmedFloor: 0,
  idFloor: 0,
};

describe('replication regressions', () => {
  it('a standby whose disk fills in the middle of an Append never re-issues an acknowledged ID', async () => {
    const b = Buffer.alloc(1024);
    const epochStartBytes = encodeEpochStart(b, 0, 1, 1, 'primary');
    const recordBytes = encodeAllocate(b, 0, 1, 1, 'ids', 1, 1);
    const pair = new Pair(1);
    pairs.push(pair);
    pair.standbyDisk.failOn('create', 'ENOSPC', /next\.tmp/); // no second standby segment
    await pair.startStandby({ segmentSizeBytes: 8192 });
    const primary = await pair.startPrimary({ segmentSizeBytes: 65536, ackWaitMs: 30_000 });
    await vi.waitFor(() => expect(primary.status().state).toBe('serving'), { timeout: 10_000 });
    const fill = Math.floor((8192 - epochStartBytes - 520) / recordBytes);
    for (let i = 0; i < fill; i++) await alloc(primary, 'ids', 1);
    // Written while partitioned, the next records reach the standby as one catch-up chunk that
    // straddles its segment end: the first part is written, the rollover finds the disk full.
    pair.net.partition();
    const acked: AllocateResult[] = [];
    const pending: Array<Promise<unknown>> = [];
    for (let i = 0; i < 40; i++) {
      pending.push(
        alloc(primary, 'ids', 1).then(
          (r) => acked.push(r),
          () => undefined,
        ),
      );
      // One batch each (a batch starts after the tick it was submitted in): the first ones
      // fit in the standby's segment and can be acknowledged, the later ones cannot.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await sleep(50);
    pair.net.heal();
    await vi.waitFor(() => expect(acked.length).toBeGreaterThan(0), { timeout: 10_000 });
    const standby = pair.standby as CounterNode;
    const held = standby.status();
    // Whatever the standby holds durably, its counters cover it.
    expect(held.namespaces.find((n) => n.name === 'ids')?.lastId).toBe(held.lastIndex - 1);
    await primary.close();
    pair.primary = null;
    await Promise.allSettled(pending);
    pair.standbyDisk.clearFaults();
    await sleep(1100); // the preallocator's back-off after ENOSPC
    await standby.promote(99);
    const next = await alloc(standby, 'ids', 1);
    const highestAcked = Math.max(...acked.map((r) => r.first + r.count - 1));
    expect(next.first).toBeGreaterThan(highestAcked);
  });

  it('an Append larger than the standby segment is split, and the standby catches up', async () => {
    const pair = await servingPair(5, { segmentSizeBytes: 8192 }, { segmentSizeBytes: 1 << 20 });
    const primary = pair.primary as CounterNode;
    await alloc(primary, 'ids', 1);
    pair.net.partition();
    const pending = Array.from({ length: 600 }, () =>
      alloc(primary, 'ids', 1).catch(() => undefined),
    );
    await sleep(50);
    pair.net.heal();
    await Promise.all(pending);
    const standby = pair.standby as CounterNode;
    await vi.waitFor(() => expect(standby.status().lastIndex).toBe(primary.status().lastIndex), {
      timeout: 10_000,
    });
    expect(standby.status().walSegments).toBeGreaterThan(2);
  });

  it('an old primary partitioned during the promotion is fenced when it reconnects', async () => {
    const pair = await servingPair(3, {}, { ackWaitMs: 1000 });
    const primary = pair.primary as CounterNode;
    await alloc(primary, 'ids', 1);
    pair.net.partition();
    const standby = pair.standby as CounterNode;
    await standby.promote(standby.status().epoch + 1);
    pair.net.heal();
    await vi.waitFor(() => expect(primary.status().state).toBe('fenced'), { timeout: 10_000 });
  });

  it('a failed meta write refuses the epoch; a promotion must pass every epoch in the log', async () => {
    let disk = new FaultStorage();
    let standby = await openFaultNode(disk, { id: 'B', role: 'standby' });
    const s1 = raw(standby);
    s1.send(hello(1));
    s1.send(append(1, 0, 0, 10));
    await vi.waitFor(() => expect(s1.replies.length).toBe(2));
    disk.failOn('datasync', 'EIO', /meta\.tmp$/, 1);
    const s2 = raw(standby);
    s2.send(hello(2));
    await vi.waitFor(() => expect(s2.closed()).toBeDefined());
    expect(standby.status().epoch).toBe(1); // not accepted in memory either
    const s3 = raw(standby);
    s3.send(hello(2)); // now written
    s3.send(append(2, 10, 1, 10));
    await vi.waitFor(() => expect(s3.replies.length).toBe(2));
    expect(standby.status().epoch).toBe(2);
    await standby.close();
    disk = disk.crash();
    standby = await openFaultNode(disk, { id: 'B', role: 'standby' });
    await expect(standby.promote(2)).rejects.toBeInstanceOf(StaleEpochError);
    await standby.promote(3);
    await standby.close();
    const log: InspectedRecord[] = [];
    await inspectDataDir(testDataDir, (r) => log.push(r), disk);
    const starts = log.filter((r) => r.type === 'epoch-start' || r.type === 'epochStart');
    expect(starts.map((r) => [r.epoch, r.nodeId])).toEqual([[3, 'B']]);
  });

  it('an admin checkpoint during a standby truncation waits for it; the dir restarts', async () => {
    let disk = new FaultStorage();
    const standby = await openFaultNode(disk, {
      id: 'standby',
      role: 'standby',
      segmentSizeBytes: 4096,
    });
    const s = raw(standby);
    s.send(hello(1, 'primary'));
    for (let k = 0; k < 10; k++) {
      // Acknowledged up to 50: the new primary below holds that much (log matching never cuts
      // below what is known to be acknowledged).
      s.send({ ...append(1, k * 20, k === 0 ? 0 : 1, 20), commitIndex: 50 });
      await vi.waitFor(() => expect(s.replies.length).toBe(k + 2));
    }
    const s2 = raw(standby);
    s2.send(hello(2, 'primary'));
    await vi.waitFor(() => expect(s2.replies.length).toBe(1));
    let checkpoint: Promise<unknown> | null = null;
    disk.onOp = (op, target) => {
      if (checkpoint === null && op === 'syncDir' && target.endsWith('/wal')) {
        checkpoint = standby.checkpoint().catch((e: unknown) => e);
      }
    };
    // The log before this epoch was... only up to 50 on the new primary: 51..200 are cut.
    s2.send({ ...append(2, 50, 1, 5), commitIndex: 0 });
    await vi.waitFor(() => expect(s2.replies.length).toBe(2), { timeout: 5000 });
    await checkpoint;
    expect(standby.status().lastIndex).toBe(55);
    await standby.close();
    disk = disk.crash();
    const again = await openFaultNode(disk, {
      id: 'standby',
      role: 'standby',
      segmentSizeBytes: 4096,
    });
    expect(again.status().lastIndex).toBe(55);
    await again.close();
  });

  it('a standby checkpoints only what the primary acknowledged, so a cut never resets it', async () => {
    const pair = await servingPair(29, { checkpointRecords: 10 });
    const primary = pair.primary as CounterNode;
    const standby = pair.standby as CounterNode;
    for (let i = 0; i < 30; i++) await alloc(primary, 'ids', 1);
    await vi.waitFor(() => expect(standby.status().checkpointIndex).toBeGreaterThan(0));
    // The batch the primary never fsynced (its fsync fails, it stops) is on the standby only.
    pair.primaryDisk.failOn('datasync', 'EIO', /\.wal$/, 1);
    await alloc(primary, 'ids', 1).catch(() => undefined);
    await vi.waitFor(() => expect(standby.status().lastIndex).toBe(primary.status().lastIndex + 1));
    // Scheduled, not written: the primary never acknowledged the last record.
    const scheduled = await standby.checkpoint();
    expect(scheduled).toMatchObject({ scheduled: true, index: standby.status().lastIndex });
    expect(standby.status().checkpointIndex).toBeLessThan(standby.status().lastIndex);
    await primary.close();
    pair.primaryDisk = pair.primaryDisk.crash();
    const restarted = await pair.startPrimary();
    // The restarted primary steps down rather than cut the standby's record (it might have
    // been acknowledged): the standby keeps its log, is not reset nor catching up (promotable).
    await vi.waitFor(() => expect(restarted.status().state).toBe('fenced'), { timeout: 10_000 });
    expect(standby.status().replication?.catchingUp).toBe(false);
    expect(standby.status().lastIndex).toBe(restarted.status().lastIndex + 1);
    expect(standby.status().checkpointIndex).toBeGreaterThan(0);
  });
});

/** A primary's log with no records (index 0 only). */
const emptyLog: PrimaryLog = {
  durableNext: 1,
  firstIndex: 1,
  epochs: () => [],
  epochAt: (i: number) => (i === 0 ? 0 : null),
  readFrom: () => Promise.resolve(null),
  snapshot: () => Promise.resolve({ index: 0, indexEpoch: 0, counters: [], floor: 0, epochs: [] }),
};

describe('sender', () => {
  it('each Append tells the standby what the primary acknowledged (its checkpoint ceiling), not what the standby acked itself', async () => {
    let acknowledged = 0;
    const { sender, sessions } = handDrivenSender(emptyLog, {
      epoch: 1,
      commitIndex: () => acknowledged,
    });
    sender.start(0);
    const link = sessions[0] as (typeof sessions)[number];
    link.events.onMessage(emptyStandby);
    await vi.waitFor(() => expect(sender.state).toBe('streaming'));
    const batch = (first: number) => ({
      firstIndex: first,
      count: 1,
      bytes: records(1, first, 1, first),
    });
    sender.offer(batch(1));
    sender.offer(batch(2));
    // The standby has both (its ack), but the primary's own write of 2 is not durable yet.
    link.events.onMessage({ kind: 'ack', durableIndex: 2 });
    acknowledged = 1;
    sender.offer(batch(3));
    const appends = link.sent.filter((m): m is Append => m.kind === 'append');
    expect(appends.map((a) => a.commitIndex)).toEqual([0, 0, 1]);
    sender.stop();
  });

  it('a catch-up read left over from an old session does not stall the new session', async () => {
    const walBytes = records(1, 1, 10, 1);
    let releaseRead: (() => void) | null = null;
    const log = {
      durableNext: 11,
      firstIndex: 1,
      epochs: () => [{ index: 1, epoch: 1 }],
      epochAt: (i: number) => (i === 0 ? 0 : i <= 10 ? 1 : null),
      readFrom: async () => {
        if (releaseRead === null) await new Promise<void>((r) => (releaseRead = r)); // slow disk
        return { buf: walBytes, records: 10 };
      },
      snapshot: () =>
        Promise.resolve({ index: 0, indexEpoch: 0, counters: [], floor: 0, epochs: [] }),
    };
    const { sender, sessions } = handDrivenSender(log, {
      ackTimeoutMs: 200,
      reconnectMinMs: 1,
      reconnectMaxMs: 2,
    });
    const empty = emptyStandby;
    sender.start(10);
    sessions[0]?.events.onMessage(empty); // catch-up from 1; the read hangs
    sessions[0]?.events.onClose(new UnavailableError('stream broke'));
    await vi.waitFor(() => expect(sessions.length).toBe(2));
    sessions[1]?.events.onMessage(empty);
    (releaseRead as unknown as () => void)();
    await vi.waitFor(() => expect(sessions[1]?.sent.some((m) => m.kind === 'append')).toBe(true));
    sender.stop();
  });
});

describe('assertions on the replication path', () => {
  it('a failed assertion in what an ack drives (the committer) goes up through the sender, not into a reconnect', async () => {
    const { sender, sessions } = handDrivenSender(emptyLog, {
      epoch: 1,
      onAck: () => assert(false, 'test: the committer found a bug'),
    });
    sender.start(0);
    const link = sessions[0] as (typeof sessions)[number];
    link.events.onMessage(emptyStandby);
    await vi.waitFor(() => expect(sender.state).toBe('streaming'));
    sender.offer({ firstIndex: 1, count: 1, bytes: records(1, 1, 1, 1) });
    expect(() => link.events.onMessage({ kind: 'ack', durableIndex: 1 })).toThrow(AssertionFailure);
    expect(sender.state).toBe('streaming'); // not reset as a protocol error would be
    expect(sessions).toHaveLength(1);
    sender.stop();
  });

  it('the sender asserts that an ack never passes the last record offered', () => {
    const { sender } = handDrivenSender(emptyLog);
    sender.start(3);
    const advance = (index: number) =>
      (sender as unknown as { advanceAck(i: number): void }).advanceAck(index);
    advance(3);
    expect(sender.ackedIndex).toBe(3);
    expect(() => advance(4)).toThrow(/ack at 4 beyond the last record offered \(3\)/);
    sender.stop();
  });

  it('a standby asserts that it acks only records its log holds (a log that lost an append)', async () => {
    const log: ReplicaLog = {
      nodeId: 's',
      lastIndex: 0,
      acceptEpoch: () => Promise.resolve(),
      holdsEpoch: () => true,
      acknowledgedFloor: () => 0,
      confirmedFloor: () => 0,
      idFloor: () => 0,
      shape: () => ({
        firstIndex: 1,
        lastIndex: 0,
        epochs: [],
        snapshotIndex: 0,
        snapshotEpoch: 0,
      }),
      epochAt: (i) => (i === 0 ? 0 : null),
      append: () => Promise.resolve(), // the bug: reports success, holds nothing
      truncateAfter: () => Promise.resolve(),
      installSnapshot: () => Promise.resolve(),
      noteProgress: () => Promise.resolve(),
      exclusive: (fn) => fn(),
    };
    // The session's message loop is not awaited by anyone: watch it to see how it ends.
    const loops: Array<Promise<void>> = [];
    const proto = ReceiverSession.prototype as unknown as { drain(): Promise<void> };
    const drain = proto.drain;
    vi.spyOn(proto, 'drain').mockImplementation(function (this: ReceiverSession) {
      const loop = drain.call(this);
      loop.catch(() => undefined); // looked at below
      loops.push(loop);
      return loop;
    });
    const acks: ToPrimary[] = [];
    const closed: unknown[] = [];
    const receiver = new Receiver(log, pino({ level: 'silent' }), { rejected: () => undefined });
    const events = receiver.open({ send: (m) => acks.push(m), close: (e) => closed.push(e) }, 'p');
    events.onMessage(hello(1));
    events.onMessage(append(1, 0, 0, 2));
    const ends = await Promise.allSettled(loops);
    vi.restoreAllMocks();
    const failure = ends.find((e) => e.status === 'rejected');
    expect((failure as PromiseRejectedResult).reason).toBeInstanceOf(AssertionFailure);
    expect(String((failure as PromiseRejectedResult).reason)).toMatch(
      /ack for 2 with the log ending at 0/,
    );
    expect(acks.filter((m) => m.kind === 'ack')).toEqual([]); // never acknowledged
    expect(closed).toEqual([]); // not turned into a refusal of the primary's message
  });
});
