/**
 * Replication with real processes: a primary and a standby (`tally serve --role …`) on
 * 127.0.0.1, concurrent unary and stream load, SIGKILLs, a wiped standby, a manual promotion
 * while the old primary is loaded. Every acknowledgement the clients saw is checked against the
 * standby's WAL (`tally wal dump`) and against the history invariants.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  assertBuilt,
  counterClient,
  freePort,
  killChildren,
  removeTempDirs,
  nodeStatus,
  runCli,
  sleep,
  startServe,
  tempDir,
  until,
  untilServing,
  type Server,
} from '../integration/serve-process';
import { History, type Operation } from './history';
import { lastIds, prng, streamWorker, unaryWorker, type Load } from './load';

const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);

afterEach(async () => {
  await killChildren();
});
afterAll(async () => {
  await removeTempDirs();
});

interface Pair {
  standby: Server;
  primary: Server;
  standbyDir: string;
  primaryDir: string;
}

const smallLog = ['--segment-size-bytes', String(64 * 1024), '--checkpoint-records', '2000'];

/** The standby listens on a fixed port: restarted, the primary finds it at the same address. */
async function startStandby(dir: string, port: number, args: string[] = []): Promise<Server> {
  const listen = ['--listen', `127.0.0.1:${port}`];
  return startServe(dir, ['--role', 'standby', ...listen, ...args], { id: 'standby' });
}

async function startPair(args: string[] = []): Promise<Pair> {
  const standbyDir = await tempDir('tally-standby-');
  const primaryDir = await tempDir('tally-primary-');
  const standby = await startStandby(standbyDir, await freePort(), args);
  const primary = await startServe(
    primaryDir,
    ['--role', 'primary', '--standby', standby.target, '--standby-wait-ms', '2000', ...args],
    { id: 'primary' },
  );
  await untilServing(primary);
  return { standby, primary, standbyDir, primaryDir };
}

function startLoad(target: string, history: History, rand: () => number, tag?: string): Load[] {
  const client = counterClient(target);
  const loads = [
    ...Array.from({ length: 4 }, () => unaryWorker(client, history, rand, tag)),
    streamWorker(client, history, rand, 16, tag),
    streamWorker(client, history, rand, 16, tag),
  ];
  return [...loads, { stop: async () => client.close() }];
}

async function stopLoad(loads: Load[]): Promise<void> {
  for (const load of loads) await load.stop();
}

interface DumpedAllocation {
  namespace: string;
  first: number;
  count: number;
  epoch: number;
  index: number;
}

/** Every allocate record in a (stopped) node's WAL, via `tally wal dump --json`. */
async function walAllocations(dataDir: string): Promise<Map<string, DumpedAllocation>> {
  const run = await runCli(['wal', 'dump', '--data-dir', dataDir, '--json']);
  expect(run.code, run.stderr).toBe(0);
  const out = new Map<string, DumpedAllocation>();
  for (const line of run.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const r = JSON.parse(line) as DumpedAllocation & { type: string };
    if (r.type === 'allocate') out.set(`${r.namespace}/${r.first}/${r.count}`, r);
  }
  return out;
}

const key = (op: Operation) => `${op.namespace}/${op.first}/${op.count}`;

async function stop(node: Server, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  node.proc.kill(signal);
  await node.exited;
}

describe(`replication with real processes (seed ${seed})`, () => {
  it('SIGKILL of the loaded primary: the standby WAL holds every acknowledged allocation', async () => {
    assertBuilt();
    const pair = await startPair();
    const history = new History();
    const loads = startLoad(pair.primary.target, history, prng(seed));
    await sleep(1500);
    await stop(pair.primary);
    await stopLoad(loads);
    await stop(pair.standby, 'SIGTERM');
    const onStandby = await walAllocations(pair.standbyDir);
    const acked = history.acked();
    expect(acked.length).toBeGreaterThan(500);
    expect(acked.filter((op) => !onStandby.has(key(op))).map(key)).toEqual([]);
    expect(history.violations().slice(0, 10)).toEqual([]);
  }, 120_000);

  it('SIGKILL of the standby: no ack without it; it restarts, catches up and load resumes', async () => {
    assertBuilt();
    // Default checkpointing: nothing is compacted in this test, so the WAL holds every ack.
    const pair = await startPair();
    const history = new History();
    const loads = startLoad(pair.primary.target, history, prng(seed + 1));
    await sleep(1000);
    await stop(pair.standby);
    const failuresBefore = history.ops.filter((op) => op.completedAt !== Infinity).length;
    await sleep(1500); // clients wait, then get UNAVAILABLE (--standby-wait-ms 2000)
    // The standby's log is frozen while it is down: every ack so far must be in it.
    const frozen = await walAllocations(pair.standbyDir);
    const ackedWhileDown = history.acked();
    expect(ackedWhileDown.filter((op) => !frozen.has(key(op))).map(key)).toEqual([]);
    const restartTick = history.mark();
    const standby = await startStandby(pair.standbyDir, pair.standby.grpcPort);
    await until('acks after the standby restarted', async () =>
      history.acked().some((op) => op.invokedAt > restartTick) ? true : null,
    );
    await sleep(500);
    await stopLoad(loads);
    const p = await nodeStatus(pair.primary.target);
    await until('standby at the primary tail', async () =>
      (await nodeStatus(standby.target)).lastIndex === p.lastIndex ? true : null,
    );
    expect(history.ops.filter((op) => op.completedAt !== Infinity).length).toBeGreaterThan(
      failuresBefore,
    );
    expect(history.violations().slice(0, 10)).toEqual([]);
    await stop(pair.primary);
    await stop(standby, 'SIGTERM');
    const all = await walAllocations(pair.standbyDir);
    expect(
      history
        .acked()
        .filter((op) => !all.has(key(op)))
        .map(key),
    ).toEqual([]);
  }, 120_000);

  it('a wiped standby is rebuilt by snapshot transfer when the primary compacted its log', async () => {
    assertBuilt();
    const pair = await startPair(smallLog);
    const history = new History();
    const loads = startLoad(pair.primary.target, history, prng(seed + 2));
    await sleep(1500);
    await stopLoad(loads);
    await stop(pair.standby);
    // Compacted on the primary: the records a new standby would need from index 1 are gone.
    const checkpoint = await runCli(['checkpoint', '--target', pair.primary.target, '--json']);
    expect(checkpoint.code, checkpoint.stderr).toBe(0);
    expect(Number(JSON.parse(checkpoint.stdout).index)).toBeGreaterThan(0);
    expect(Number((await nodeStatus(pair.primary.target)).walSegments)).toBeGreaterThan(0);
    const wiped = await tempDir('tally-wiped-');
    const standby = await startStandby(wiped, pair.standby.grpcPort, smallLog);
    const loads2 = startLoad(pair.primary.target, history, prng(seed + 3));
    await sleep(500);
    await stopLoad(loads2);
    const p = await nodeStatus(pair.primary.target);
    const caughtUp = await until('wiped standby caught up', async () => {
      const s = await nodeStatus(standby.target);
      return s.lastIndex === p.lastIndex && s.replication?.catchingUp === false ? s : null;
    });
    expect(Number(caughtUp.checkpointIndex)).toBeGreaterThan(0); // it started from a snapshot
    const metrics = await fetch(`http://127.0.0.1:${standby.metricsPort}/metrics`);
    expect(await metrics.text()).toMatch(/^tally_replication_snapshot_installs_total 1$/m);
    // Promoted, it continues above everything the old primary acknowledged.
    await stop(pair.primary);
    const promote = await runCli(['promote', '--target', standby.target, '--epoch', '100']);
    expect(promote.code, promote.stderr).toBe(0);
    const counters = await lastIds(standby.target);
    for (const [ns, highest] of history.highestAcked()) {
      expect(counters.get(ns) ?? 0, ns).toBeGreaterThanOrEqual(highest);
    }
    expect(history.violations().slice(0, 10)).toEqual([]);
  }, 120_000);

  it('promotion while the old primary is loaded: the old one acks nothing more, no ID twice', async () => {
    assertBuilt();
    const pair = await startPair();
    const history = new History();
    const rand = prng(seed + 4);
    const oldLoad = startLoad(pair.primary.target, history, rand, 'old');
    await sleep(1000);
    const before = await nodeStatus(pair.standby.target);
    const promote = await runCli([
      'promote',
      '--target',
      pair.standby.target,
      '--epoch',
      String(Number(before.epoch) + 1),
      '--json',
    ]);
    expect(promote.code, promote.stderr).toBe(0);
    const promotedAt = history.mark();
    const newLoad = startLoad(pair.standby.target, history, rand, 'new');
    await sleep(1000);
    await stopLoad(oldLoad);
    await stopLoad(newLoad);
    const old = history.acked().filter((op) => op.tag === 'old');
    const fresh = history.acked().filter((op) => op.tag === 'new');
    expect(old.length).toBeGreaterThan(100);
    expect(fresh.length).toBeGreaterThan(100);
    // Nothing the clients sent to the old primary after the promotion was acknowledged.
    expect(old.filter((op) => op.invokedAt > promotedAt).length).toBe(0);
    expect((await nodeStatus(pair.primary.target)).state).toBe('fenced');
    expect(history.violations().slice(0, 10)).toEqual([]);
    // Every ack of the old primary is in the new primary's log (below its new epoch).
    await stop(pair.primary);
    await stop(pair.standby, 'SIGTERM');
    const log = await walAllocations(pair.standbyDir);
    expect(old.filter((op) => !log.has(key(op))).map(key)).toEqual([]);
    const epoch = Number(JSON.parse(promote.stdout).epoch);
    expect(old.every((op) => (log.get(key(op)) as DumpedAllocation).epoch < epoch)).toBe(true);
  }, 120_000);
});
