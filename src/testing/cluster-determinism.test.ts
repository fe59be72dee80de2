/**
 * The seam end to end: the in-process cluster (real Controller, two real TallyNodes on
 * FaultStorage, replication over FaultNetwork, a real TallyClient) runs entirely on a SimClock
 * from a seed — placement, allocations, a power cut of the primary, the controller's failover on
 * virtual time, allocations on the new primary — and two runs of one seed produce the same
 * trace, virtual timestamps included. Code that read the real clock, set a real timer or drew
 * real randomness would make the runs differ (or hang: virtual time moves only when stepped),
 * and is caught directly too: the real timers, clocks and Math.random are watched during a run.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TallyClient } from '../client/tally-client';
import { Cluster } from './cluster-harness';
import { seededRandom } from './random';
import { SimClock } from './sim-clock';

/** Real time and randomness the code under test reached for during a run: call sites. */
function watchRealTime(): string[] {
  const calls: string[] = [];
  const watch = <T extends object>(owner: T, name: keyof T & string, label: string): void => {
    const original = owner[name] as (...args: unknown[]) => unknown;
    vi.spyOn(owner, name as never).mockImplementation(((...args: unknown[]) => {
      const stack = new Error().stack ?? '';
      const site = stack.split('\n').find((l) => l.includes('/src/') && !l.includes('.test.ts'));
      if (site !== undefined) calls.push(`${label} at ${site.trim()}`);
      return original.apply(owner, args);
    }) as never);
  };
  watch(globalThis, 'setTimeout', 'setTimeout');
  watch(globalThis, 'setInterval', 'setInterval');
  watch(Date, 'now', 'Date.now');
  watch(performance, 'now', 'performance.now');
  watch(Math, 'random', 'Math.random');
  watch(process, 'nextTick', 'process.nextTick');
  return calls;
}

interface Run {
  trace: string[];
  realTime: string[];
}

async function failoverRun(seed: number): Promise<Run> {
  const realTime = watchRealTime();
  const clock = new SimClock();
  const startMs = clock.monotonicMs();
  const at = (): string => `@${(clock.monotonicMs() - startMs).toFixed(3)}`;
  const trace: string[] = [];
  const cluster = new Cluster({ clock, seed, probeIntervalMs: 50, failoverTimeoutMs: 300 });
  // Role changes and configuration changes, as seen between callbacks.
  const last = new Map<string, string>();
  const observe = (key: string, value: string): void => {
    if (last.get(key) === value) return;
    last.set(key, value);
    trace.push(`${at()} ${key} ${value}`);
  };
  clock.afterEachStep = () => {
    for (const id of ['a', 'b'] as const) {
      const n = cluster.nodes[id];
      if (n === null) {
        observe(id, 'down');
        continue;
      }
      const s = n.status();
      observe(id, `${s.role}/${s.state} epoch ${s.epoch} last ${s.lastIndex} dir ${s.incarnation}`);
    }
    const c = cluster.controller?.current;
    if (c !== null && c !== undefined) {
      const failover = c.lastFailover === null ? '' : ` after "${c.lastFailover.reason}"`;
      observe(
        'config',
        `v${c.version} cluster ${c.clusterId} epoch ${c.epoch} primary ${c.primary.id} in-sync [${c.inSync.join(',')}] promoting ${c.promoting}${failover}`,
      );
    }
  };
  const client = new TallyClient({
    addresses: ['a:1', 'b:1'],
    transport: cluster.transport(),
    clock,
    backoff: { random: seededRandom(seed * 16 + 15) },
  });
  const allocate = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const r = await clock.runUntilSettled(client.allocate('ids', 3), 20_000);
      trace.push(`${at()} allocated ${r.first}..${r.first + r.count - 1} epoch ${r.epoch}`);
    }
  };
  try {
    await cluster.started(0);
    await allocate(5);
    await cluster.crash('a');
    trace.push(`${at()} crashed a`);
    await allocate(5);
    expect(cluster.controller?.current?.primary.id).toBe('b');
  } finally {
    client.close();
    await cluster.close();
    clock.afterEachStep = null;
    vi.restoreAllMocks();
  }
  return { trace, realTime };
}

function digest(lines: string[]): string {
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

describe('the cluster on a SimClock', () => {
  afterEach(() => vi.restoreAllMocks());

  it('fails over on virtual time and replays byte for byte from a seed, with no real timer, clock or randomness', async () => {
    const first = await failoverRun(11);
    if (process.env.SIM_TRACE === '1') console.log(first.trace.join('\n')); // to read a run
    const second = await failoverRun(11);
    expect(first.realTime).toEqual([]);
    expect(second.realTime).toEqual([]);
    expect(second.trace).toEqual(first.trace);
    expect(digest(second.trace)).toBe(digest(first.trace));

    // The run did what it says: ten allocations, unique and increasing across the failover,
    // the later five from b in a later epoch, after the controller promoted b.
    const allocations = first.trace.filter((l) => l.includes(' allocated '));
    expect(allocations).toHaveLength(10);
    const firsts = allocations.map((l) => Number(/allocated (\d+)\./.exec(l)?.[1]));
    for (let i = 1; i < firsts.length; i++) {
      expect(firsts[i]).toBeGreaterThan((firsts[i - 1] as number) + 2);
    }
    const crashAt = first.trace.findIndex((l) => l.endsWith('crashed a'));
    expect(crashAt).toBeGreaterThan(0);
    expect(first.trace.slice(crashAt).some((l) => / config .* primary b .*after "/.test(l))).toBe(
      true,
    );
  });

  it('a different seed draws different identities (the randomness is the seed’s)', async () => {
    const a = await failoverRun(11);
    const b = await failoverRun(12);
    const identities = (t: string[]) => t.filter((l) => / (a|b|config) /.test(l)).join('\n');
    expect(identities(b.trace)).not.toBe(identities(a.trace));
  });
});
