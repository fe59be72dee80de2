/**
 * TallyClient against a scripted cluster (src/testing/fake-allocate-transport.ts) on fake
 * timers: pipelining, primary discovery, which statuses are retried where, backoff inside the
 * deadline, bounds, abort and close. Real processes: test/integration/client.test.ts.
 */
import { status as Status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock, type Clock } from '../core/clock';
import { clientHintHopsMax } from '../core/limits';
import { FakeCluster } from '../testing/fake-allocate-transport';
import { seededRandom } from '../testing/random';
import {
  ClientAbortedError,
  ClientClosedError,
  ClientDeadlineExceededError,
  ClientOverloadedError,
  ClientRequestError,
} from './errors';
import { type Allocation, TallyClient, type TallyClientOptions } from './tally-client';

/** Deadlines measured on the fake timers' clock; its timers are the (faked) globals. */
const clock: Clock = {
  ...systemClock,
  monotonicMs: () => Date.now(),
  nowUnixMs: () => Date.now(),
};

interface Outcome<T> {
  done: boolean;
  value?: T;
  error?: unknown;
}

/** Follows a promise without awaiting it (the fake timers decide when it can settle). */
function track<T>(promise: Promise<T>): Outcome<T> {
  const outcome: Outcome<T> = { done: false };
  promise.then(
    (value) => Object.assign(outcome, { done: true, value }),
    (error: unknown) => Object.assign(outcome, { done: true, error }),
  );
  return outcome;
}

/** Runs promise jobs (stream events) and the timers due within ms. */
const elapse = (ms: number): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);

function setup(
  addresses: string[],
  opts: Partial<TallyClientOptions> = {},
): { cluster: FakeCluster; client: TallyClient } {
  const cluster = new FakeCluster();
  const client = new TallyClient({
    addresses,
    transport: cluster,
    clock,
    // A retry waits at least 24 ms, so "answered after elapse(0)" means "without a backoff".
    backoff: { random: () => 0.99 },
    ...opts,
  });
  return { cluster, client };
}

/** Every ID of every allocation, checked to be distinct. */
function uniqueIds(allocations: Allocation[]): Set<number> {
  const ids = new Set<number>();
  for (const a of allocations) {
    for (let id = a.first; id < a.first + a.count; id++) {
      expect(ids.has(id), `ID ${id} handed out twice`).toBe(false);
      ids.add(id);
    }
  }
  return ids;
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('TallyClient pipelining', () => {
  it('sends concurrent allocations on one stream and matches responses in any order to their callers', async () => {
    const { cluster, client } = setup(['a:1']);
    cluster.node('a:1').answer = () => 'hold';
    const counts = Array.from({ length: 100 }, (_, i) => (i % 5) + 1);
    const calls = counts.map((count) => track(client.allocate('ns', count)));
    await elapse(0);
    expect(cluster.opened).toEqual(['a:1']);
    expect(cluster.sent).toHaveLength(100);
    expect(new Set(cluster.sent.map((s) => s.req.correlationId)).size).toBe(100);

    cluster.node('a:1').release('newest-first');
    await elapse(0);
    const results = calls.map((c) => c.value as Allocation);
    expect(results.map((r) => r?.count)).toEqual(counts);
    expect(uniqueIds(results).size).toBe(counts.reduce((a, b) => a + b));
    // Answered newest first: the last caller holds the lowest IDs, matched by correlation id.
    expect(results[99]?.first).toBe(1);
    expect(results.map((r) => r.epoch)).toEqual(counts.map(() => 1));
    client.close();
  });

  it(`writes at most streamInFlightMax requests; beyond pendingRequestsMax allocate() is refused at once`, async () => {
    const { cluster, client } = setup(['a:1'], { streamInFlightMax: 4, pendingRequestsMax: 10 });
    const node = cluster.node('a:1');
    node.answer = () => 'hold';
    const calls = Array.from({ length: 10 }, () => track(client.allocate('ns')));
    await expect(client.allocate('ns')).rejects.toBeInstanceOf(ClientOverloadedError);
    let mostHeld = 0;
    while (calls.some((c) => !c.done)) {
      await elapse(0);
      mostHeld = Math.max(mostHeld, node.held);
      node.release();
      await elapse(0);
    }
    expect(mostHeld).toBe(4);
    expect(calls.every((c) => c.value !== undefined)).toBe(true);
    expect(cluster.sent).toHaveLength(10);
    client.close();
  });

  it('refuses a count outside 1..10000 with INVALID_ARGUMENT before sending anything', async () => {
    const { cluster, client } = setup(['a:1']);
    for (const count of [0, -1, 1.5, 10_001, NaN]) {
      const err = await client.allocate('ns', count).catch((e: unknown) => e);
      expect(err, String(count)).toBeInstanceOf(ClientRequestError);
      expect((err as ClientRequestError).code).toBe(Status.INVALID_ARGUMENT);
    }
    expect(cluster.sent).toHaveLength(0);
    client.close();
  });
});

describe('TallyClient primary discovery', () => {
  it("follows a standby's FAILED_PRECONDITION hint at once, sends later calls there, and ends the standby's idle stream", async () => {
    const { cluster, client } = setup(['standby:1']);
    cluster.node('standby:1').answer = () => ({
      code: Status.FAILED_PRECONDITION,
      primaryAddress: 'primary:1',
    });
    const first = track(client.allocate('ns', 3));
    await elapse(0);
    expect(first.value).toMatchObject({ first: 1, count: 3 });
    expect(client.target).toBe('primary:1');
    expect(cluster.node('standby:1').streams.size).toBe(0);

    await client.allocate('ns');
    expect(cluster.sent.map((s) => s.address)).toEqual(['standby:1', 'primary:1', 'primary:1']);
    client.close();
  });

  it('FAILED_PRECONDITION without a hint (a deposed primary): the next address at once', async () => {
    const { cluster, client } = setup(['old:1', 'new:1']);
    cluster.node('old:1').answer = () => ({ code: Status.FAILED_PRECONDITION });
    const call = track(client.allocate('ns'));
    await elapse(0);
    expect(call.value).toMatchObject({ first: 1 });
    expect(cluster.sent.map((s) => s.address)).toEqual(['old:1', 'new:1']);
    client.close();
  });

  it('connection refused / UNAVAILABLE: the next address after a backoff, not at once', async () => {
    const { cluster, client } = setup(['a:1', 'b:1', 'c:1']);
    cluster.node('a:1').down = true;
    cluster.node('b:1').answer = () => ({ code: Status.UNAVAILABLE, message: 'draining' });
    const call = track(client.allocate('ns'));
    await elapse(0);
    expect(call.done).toBe(false);
    expect(cluster.sent.map((s) => s.address)).toEqual(['a:1']);
    await elapse(25); // first backoff: < 25 ms
    expect(cluster.sent.map((s) => s.address)).toEqual(['a:1', 'b:1']);
    await elapse(50); // second backoff: < 50 ms
    expect(call.value).toMatchObject({ first: 1 });
    expect(cluster.sent.map((s) => s.address)).toEqual(['a:1', 'b:1', 'c:1']);
    client.close();
  });

  it('two nodes naming each other: clientHintHopsMax hops at once, then backoff until the deadline', async () => {
    const { cluster, client } = setup(['a:1']);
    cluster.node('a:1').answer = () => ({
      code: Status.FAILED_PRECONDITION,
      primaryAddress: 'b:1',
    });
    cluster.node('b:1').answer = () => ({
      code: Status.FAILED_PRECONDITION,
      primaryAddress: 'a:1',
    });
    const call = track(client.allocate('ns', 1, { deadlineMs: 2000 }));
    await elapse(0);
    expect(cluster.sent).toHaveLength(clientHintHopsMax + 1);
    await elapse(2000);
    expect(call.error).toBeInstanceOf(ClientDeadlineExceededError);
    expect((call.error as ClientDeadlineExceededError).lastStatus?.code).toBe(
      Status.FAILED_PRECONDITION,
    );
    client.close();
  });

  it('resolvePrimary: a client without addresses sends where the resolver says', async () => {
    const cluster = new FakeCluster();
    const resolvePrimary = vi.fn(() => Promise.resolve('found:1'));
    const client = new TallyClient({ addresses: [], resolvePrimary, transport: cluster, clock });
    expect(await client.allocate('ns')).toMatchObject({ first: 1 });
    expect(cluster.sent.map((s) => s.address)).toEqual(['found:1']);
    expect(resolvePrimary).toHaveBeenCalledTimes(1);
    expect(() => new TallyClient({ addresses: [], transport: cluster })).toThrow(/^client: /);
    client.close();
  });
});

describe('TallyClient retries and deadlines', () => {
  it('a dropped stream: every request on it is retried (on the node the standby names) and each caller gets distinct IDs', async () => {
    const { cluster, client } = setup(['a:1', 'b:1'], { backoff: { random: seededRandom(5) } });
    const a = cluster.node('a:1');
    a.answer = () => 'hold';
    cluster.node('b:1').answer = () => ({
      code: Status.FAILED_PRECONDITION,
      primaryAddress: 'a:1',
    });
    const calls = Array.from({ length: 50 }, () => track(client.allocate('ns', 2)));
    await elapse(0);
    expect(a.held).toBe(50);
    a.dropStreams(); // e.g. the primary restarted: its IDs for these were never acknowledged
    a.answer = () => 'allocate';
    await elapse(2000);
    expect(calls.every((c) => c.value !== undefined)).toBe(true);
    expect(uniqueIds(calls.map((c) => c.value as Allocation)).size).toBe(100);
    client.close();
  });

  it('a standby naming the primary whose stream just broke is asked again within 100 ms, not sent back to the lost primary; once promoted it answers', async () => {
    const { cluster, client } = setup(['a:1', 'b:1'], { backoff: { random: seededRandom(7) } });
    const a = cluster.node('a:1');
    const b = cluster.node('b:1');
    a.answer = () => 'hold';
    b.answer = () => ({ code: Status.FAILED_PRECONDITION, primaryAddress: 'a:1' });
    const calls = Array.from({ length: 20 }, () => track(client.allocate('ns')));
    await elapse(0);
    expect(a.held).toBe(20);
    a.down = true; // crashed: its port refuses connections
    a.dropStreams();
    const before = cluster.sent.length;
    await elapse(600); // the standby, not yet promoted, keeps naming a
    expect(new Set(cluster.sent.slice(before).map((s) => s.address))).toEqual(new Set(['b:1']));
    expect(calls.some((c) => c.done)).toBe(false);
    b.answer = () => 'allocate'; // promoted
    await elapse(100);
    expect(calls.every((c) => c.value !== undefined)).toBe(true);
    client.close();
  });

  it('RESOURCE_EXHAUSTED is retried on the same node after a backoff', async () => {
    const { cluster, client } = setup(['a:1', 'b:1']);
    let refusals = 2;
    cluster.node('a:1').answer = () =>
      refusals-- > 0 ? { code: Status.RESOURCE_EXHAUSTED } : 'allocate';
    const call = track(client.allocate('ns'));
    await elapse(200);
    expect(call.value).toMatchObject({ first: 1 });
    expect(cluster.sent.map((s) => s.address)).toEqual(['a:1', 'a:1', 'a:1']);
    client.close();
  });

  it.each([
    ['INVALID_ARGUMENT', Status.INVALID_ARGUMENT],
    ['OUT_OF_RANGE', Status.OUT_OF_RANGE],
    ['DATA_LOSS', Status.DATA_LOSS],
    ['INTERNAL', Status.INTERNAL],
  ])('%s on a request is rejected at once after one attempt', async (name, code) => {
    const { cluster, client } = setup(['a:1', 'b:1']);
    cluster.node('a:1').answer = () => ({ code, message: 'node: nope' });
    const call = track(client.allocate('ns'));
    await elapse(0);
    expect(call.error).toBeInstanceOf(ClientRequestError);
    expect(call.error).toMatchObject({ code, details: 'node: nope' });
    expect((call.error as Error).message).toBe(
      `client: allocate 1 in "ns" failed: ${name}: node: nope`,
    );
    await elapse(10_000);
    expect(cluster.sent).toHaveLength(1);
    client.close();
  });

  it('while no node answers: retries with backoff, none starts after the deadline, then DEADLINE_EXCEEDED with the last status', async () => {
    const { cluster, client } = setup(['a:1', 'b:1'], { backoff: { random: seededRandom(9) } });
    cluster.node('a:1').down = true;
    cluster.node('b:1').down = true;
    const startMs = Date.now();
    const call = track(client.allocate('ns', 1, { deadlineMs: 3000 }));
    await elapse(3000);
    expect(call.error).toBeInstanceOf(ClientDeadlineExceededError);
    const err = call.error as ClientDeadlineExceededError;
    expect(err.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(err.lastStatus?.code).toBe(Status.UNAVAILABLE);
    expect(err.attempts).toBe(cluster.sent.length);
    expect(err.attempts).toBeGreaterThan(4);
    expect(err.message).toMatch(/deadline of 3000 ms after \d+ attempt\(s\); last: UNAVAILABLE/);
    for (const sent of cluster.sent) expect(sent.atMs - startMs).toBeLessThan(3000);
    // Both nodes were tried, in turn.
    expect(new Set(cluster.sent.map((s) => s.address))).toEqual(new Set(['a:1', 'b:1']));
    expect(vi.getTimerCount()).toBe(0);
    client.close();
  });

  it('a request unanswered at its deadline is rejected, its slot goes to the next request, and its late answer is dropped', async () => {
    const { cluster, client } = setup(['a:1'], { streamInFlightMax: 1 });
    const node = cluster.node('a:1');
    node.answer = () => 'hold';
    const short = track(client.allocate('ns', 1, { deadlineMs: 100 }));
    const long = track(client.allocate('ns', 1, { deadlineMs: 5000 }));
    await elapse(0);
    expect(cluster.sent).toHaveLength(1);
    await elapse(100);
    expect(short.error).toBeInstanceOf(ClientDeadlineExceededError);
    expect(short.error).toMatchObject({ attempts: 1, lastStatus: undefined });
    expect(cluster.sent).toHaveLength(2);
    node.release();
    await elapse(0);
    // The first request's IDs (1) were allocated and never acknowledged: a gap.
    expect(long.value).toMatchObject({ first: 2 });
    client.close();
  });

  it('an AbortSignal rejects the call with ClientAbortedError; an aborted signal sends nothing', async () => {
    const { cluster, client } = setup(['a:1']);
    cluster.node('a:1').answer = () => 'hold';
    const controller = new AbortController();
    const call = track(client.allocate('ns', 1, { signal: controller.signal }));
    await elapse(0);
    controller.abort(new Error('test: user left'));
    await elapse(0);
    expect(call.error).toBeInstanceOf(ClientAbortedError);
    expect((call.error as Error).cause).toEqual(new Error('test: user left'));
    await expect(client.allocate('ns', 1, { signal: controller.signal })).rejects.toBeInstanceOf(
      ClientAbortedError,
    );
    expect(cluster.sent).toHaveLength(1);
    client.close();
  });

  it('close() rejects every pending call with ClientClosedError, cancels the streams and leaves no timer', async () => {
    const { cluster, client } = setup(['a:1', 'b:1']);
    cluster.node('a:1').answer = () => 'hold';
    cluster.node('b:1').down = true;
    const held = track(client.allocate('ns'));
    await elapse(0);
    cluster.node('a:1').dropStreams();
    const backingOff = track(client.allocate('ns'));
    await elapse(0);
    client.close();
    await elapse(0);
    expect(held.error).toBeInstanceOf(ClientClosedError);
    expect(backingOff.error).toBeInstanceOf(ClientClosedError);
    expect(cluster.closed).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    await expect(client.allocate('ns')).rejects.toBeInstanceOf(ClientClosedError);
  });
});
