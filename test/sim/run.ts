/**
 * One simulated run (a seed): a cluster (world.ts), clients allocating on a few namespaces, a
 * seeded schedule of faults at every layer at once, then a liveness phase (everything healed
 * and restarted: the cluster must serve every namespace again within livenessBoundMs of
 * virtual time), then the checks: the history (src/check/history.ts: unique, real-time order,
 * never backwards) and a final allocation per namespace above every acknowledged ID.
 *
 * Everything runs on one SimClock and one seeded generator; `digest` (SHA-256 of the trace of
 * faults and role changes and of the history) is the same for the same seed, byte for byte.
 */
import { createHash } from 'node:crypto';
import { setPlantedBug, type PlantedBug } from '../../src/core/planted-bugs';
import { checkHistory, formatHistoryLine, type HistoryOp } from '../../src/check/history';
import { FaultStorage } from '../../src/testing/fault-storage';
import { nonZeroEnd, scanSegment } from '../../src/wal/decoder';
import { parseSegmentName } from '../../src/wal/segment-files';
import { SimClock } from '../../src/testing/sim-clock';
import { seededRandom } from '../../src/testing/random';
import type { TallyClient } from '../../src/client';
import { nodeIds, World, type NodeId } from './world';

export type FaultKind =
  | 'crash-node'
  | 'crash-node-torn'
  | 'crash-controller'
  | 'controller-loses-disk'
  | 'partition-replication'
  | 'one-way-replication'
  | 'lossy-replication'
  | 'cut-admin'
  | 'stall-admin'
  | 'cut-client'
  | 'enospc'
  | 'hang-disk'
  | 'bit-flip'
  | 'lose-tail'
  | 'wipe-disk'
  | 'old-disk';

export const faultKinds: readonly FaultKind[] = [
  'crash-node',
  'crash-node-torn',
  'crash-controller',
  'controller-loses-disk',
  'partition-replication',
  'one-way-replication',
  'lossy-replication',
  'cut-admin',
  'cut-client',
  'enospc',
  'hang-disk',
  'bit-flip',
  'lose-tail',
  'wipe-disk',
  'old-disk',
  'stall-admin',
];

export interface SimOptions {
  seed: number;
  /** Faults in the chaos phase (default: 4..12, from the seed). */
  faults?: number;
  /** Virtual ms of chaos (default 8000). */
  chaosMs?: number;
  /** A bug planted on purpose (src/core/planted-bugs.ts): the run should catch it. */
  plant?: PlantedBug;
  /**
   * The fault kinds drawn from (default faultKinds). A regression seed names the list it was
   * found with: adding a kind changes every seed's schedule.
   */
  kinds?: readonly FaultKind[];
  /**
   * A scripted schedule instead of the seed's (a scenario test): each fault's time, kind and
   * victim, and how long it holds (or the node or controller stays down) where given.
   */
  plan?: ReadonlyArray<PlannedFault>;
}

export interface PlannedFault {
  atMs: number;
  kind: FaultKind;
  victim: NodeId;
  holdMs?: number;
}

export interface SimResult {
  seed: number;
  digest: string;
  operations: number;
  acknowledged: number;
  faults: Partial<Record<FaultKind, number>>;
  faultCount: number;
  /** Why the run failed (empty: it passed). */
  violations: string[];
  /** Virtual ms from the heal until every namespace was served again (null: never). */
  recoveredAfterMs: number | null;
  /** Not served after the heal, in a state that waits for an operator by design: why. */
  waitsForOperator: string | null;
  virtualMs: number;
  trace: string[];
}

/**
 * The controller's refusals that wait for an operator (README, "Runbooks"), by kind, all by
 * design. The third: a failover's target lost its disk before the promotion was confirmed.
 * The old primary, out of the in-sync set, is not reinstated: the target was approved to
 * acknowledge alone, and whatever it acknowledged went with its disk (first taken for a liveness
 * gap: seeds 738, 1487 and 1957 of an earlier schedule; in seed 738 the target even failed
 * before its epoch was durable, but nothing the controller sees can prove that).
 */
export const operatorStates: ReadonlyArray<readonly [kind: string, text: string]> = [
  ['history lost', 'no member that holds every acknowledged record can take over'],
  ['history unproven', 'no member proves it holds the history'],
  ['promotion unconfirmed', 'not confirmed, and'],
];

/** After the heal, the cluster must serve every namespace within this much virtual time. */
export const livenessBoundMs = 30_000;

/** Where each record of a WAL segment begins (a torn last record's too). */
function recordStarts(data: Buffer, file: string): Set<number> {
  const starts = new Set<number>();
  const firstIndex = parseSegmentName(file.slice(file.lastIndexOf('/') + 1)) ?? 1;
  const scan = scanSegment(data, data.length, firstIndex, 0, (_record, offset) =>
    starts.add(offset),
  );
  if (scan.end.kind === 'torn') starts.add(scan.end.offset);
  return starts;
}

export async function runSeed(opts: SimOptions): Promise<SimResult> {
  const clock = new SimClock(0);
  // The fault schedule is drawn first, from its own stream, so that it does not depend on how
  // the run goes; the workload and the faults' details draw from another (world.ts: the rest).
  const r = seededRandom(opts.seed * 64 + 6);
  const pick = <T>(xs: readonly T[], from: () => number = r): T =>
    xs[Math.floor(from() * xs.length)] as T;
  const schedule = seededRandom(opts.seed * 64);
  const world = new World({ clock, seed: opts.seed, delayMsMax: 1 + r() * 4 });
  const history: HistoryOp[] = [];
  const violations: string[] = [];
  const faults: Partial<Record<FaultKind, number>> = {};
  const namespaces = Array.from({ length: 1 + Math.floor(schedule() * 3) }, (_, i) => `ns${i}`);
  const chaosMs = opts.chaosMs ?? 8000;
  const faultCount = opts.faults ?? 4 + Math.floor(schedule() * 9);
  const planned: ReadonlyArray<PlannedFault> =
    opts.plan ??
    Array.from({ length: faultCount }, () => ({
      atMs: 500 + schedule() * (chaosMs - 500),
      kind: pick(opts.kinds ?? faultKinds, schedule),
      victim: pick(nodeIds, schedule),
    }));
  /**
   * Stores whose contents a fault destroyed (wiped, replaced by an old copy, damaged so that
   * the node gets a new disk, the controller's lost). At most one per run: Tally keeps its
   * promise through the loss of any one store, but not of two where those two were all that
   * knew the history — a primary acknowledging alone (its standby out of the in-sync set) and
   * the controller that knows it does: with both gone nothing is left that knows which IDs were
   * handed out (seeds 448, 985 and 1683 of an earlier version showed it).
   */
  const destroyed = new Set<NodeId | 'controller'>();
  const mayDestroy = (store: NodeId | 'controller'): boolean =>
    destroyed.has(store) || destroyed.size === 0;
  /** Durable copies of each node's disk taken along the way (an "old copy" to put back). */
  const oldCopies: Partial<Record<NodeId, FaultStorage>> = {};

  let stopping = false;
  const loops: Promise<void>[] = [];
  const clientLoop = async (client: TallyClient): Promise<void> => {
    while (!stopping) {
      const ns = pick(namespaces);
      const count = r() < 0.8 ? 1 : 1 + Math.floor(r() * 5);
      const invokeMs = clock.monotonicMs();
      try {
        const a = await client.allocate(ns, count, { deadlineMs: 2000 });
        history.push({
          ns,
          first: BigInt(a.first),
          count,
          invokeMs,
          completeMs: clock.monotonicMs(),
          outcome: 'ok',
        });
      } catch {
        // The request may have reached a node and allocated (a gap, never handed out): unknown.
        history.push({
          ns,
          first: null,
          count,
          invokeMs,
          completeMs: clock.monotonicMs(),
          outcome: 'unknown',
        });
      }
      await sleep(clock, r() * 20);
    }
  };

  const fail = (why: string): void => {
    violations.push(why);
    world.log(`VIOLATION ${why}`);
  };

  // An AssertionFailure (an invariant check in the code) or any other error nobody handled
  // fails the seed: in production it would crash the process.
  const unhandled: string[] = [];
  const onUnhandled = (err: unknown): void => {
    unhandled.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  };
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
  setPlantedBug(opts.plant ?? null);
  try {
    await clock.runUntilSettled(world.startController(), 10_000);
    for (const id of nodeIds) world.startNode(id);
    // The world's invariant (one primary per epoch number), also between role changes.
    const watch = clock.setInterval(() => world.checkEpochOwners(), 50);
    const clientCount = 1 + Math.floor(schedule() * 3);
    for (let c = 0; c < clientCount; c++) {
      const client = world.newClient(`c${c}`);
      const loopsPerClient = 1 + Math.floor(schedule() * 4);
      for (let l = 0; l < loopsPerClient; l++) loops.push(clientLoop(client));
    }

    // Chaos: faults at seeded times, each healed after a while (or left to the heal).
    const heals: Array<() => Promise<void> | void> = [];
    for (const f of planned) {
      clock.setTimeout(() => {
        if (applyFault(f.kind, f.victim, f.holdMs)) faults[f.kind] = (faults[f.kind] ?? 0) + 1;
      }, f.atMs);
    }
    const later = (ms: number, fn: () => Promise<void> | void): void => {
      heals.push(fn);
      clock.setTimeout(() => {
        const i = heals.indexOf(fn);
        if (i < 0) return;
        heals.splice(i, 1);
        void fn();
      }, ms);
    };
    function applyFault(kind: FaultKind, id: NodeId, holdMs?: number): boolean {
      // A scripted hold, else one drawn from the seed (drawn either way: same stream).
      const hold = (drawn: number): number => holdMs ?? drawn;
      const restartLater = (id: NodeId): void =>
        later(hold(50 + r() * 2000), () => world.startNode(id));
      switch (kind) {
        case 'crash-node':
        case 'crash-node-torn': {
          if (!world.isUp(id)) return false;
          if (r() < 0.5) oldCopies[id] = world.disks[id].crash();
          const tearAt =
            kind === 'crash-node-torn'
              ? Math.floor(r() * (world.disks[id].lastWriteBytes() + 1))
              : undefined;
          void world.crashNode(id, { tearAt });
          restartLater(id);
          return true;
        }
        case 'crash-controller':
        case 'controller-loses-disk':
          if (world.controller === null) return false;
          if (kind === 'controller-loses-disk') {
            if (!mayDestroy('controller')) return false;
            destroyed.add('controller');
          }
          // The disk is gone with the process: replaced before the controller can start again
          // (its stop may wait out a call in progress; the restart must not find the old disk).
          void world.crashController();
          if (kind === 'controller-loses-disk') {
            world.ctlDisk = new FaultStorage();
            world.log('controller disk replaced (empty)');
          }
          later(hold(50 + r() * 1500), () => world.startController());
          return true;
        case 'partition-replication':
          world.repl.partition();
          world.log('replication partitioned');
          later(hold(100 + r() * 2000), () => {
            world.repl.heal();
            world.log('replication healed');
          });
          return true;
        case 'one-way-replication': {
          const way = r() < 0.5 ? 'toStandby' : 'toPrimary';
          world.repl.blackhole(way);
          world.log(`replication one-way: messages ${way} lost`);
          later(100 + r() * 3000, () => {
            world.repl.heal();
            world.log('replication healed');
          });
          return true;
        }
        case 'lossy-replication': {
          const plan = {
            dropRate: r() * 0.2,
            duplicateRate: r() * 0.2,
            reorderRate: r() * 0.3,
            delayMsMax: r() * 20,
          };
          world.repl.heal(plan);
          world.log(`replication lossy ${JSON.stringify(plan)}`);
          later(100 + r() * 2000, () => {
            world.repl.heal();
            world.log('replication clean');
          });
          return true;
        }
        case 'cut-admin':
          world.cutAdmin(id);
          later(100 + r() * 2000, () => {
            world.adminCut.delete(id);
            world.log(`admin link to ${id} healed`);
          });
          return true;
        case 'stall-admin':
          // What the controller sends the node arrives up to 6 s late (past every deadline),
          // perhaps after the controller crashed and another replaced it.
          if (world.controller === null) return false; // no connection to stall
          world.stallAdmin(id);
          later(hold(1000 + r() * 5000), () => world.unstallAdmin(id));
          return true;
        case 'cut-client': {
          const client = `c${Math.floor(r() * world.clients.length)}`;
          world.cutClient(client, id);
          later(100 + r() * 2000, () => {
            world.clientCut.delete(`${client}|${id}`);
            world.log(`${client}↔${id} healed`);
          });
          return true;
        }
        case 'enospc':
          world.disks[id].failOn('write', 'ENOSPC', /wal|snapshot|meta/, 1 + Math.floor(r() * 20));
          world.log(`${id} disk full`);
          later(100 + r() * 2000, () => {
            world.disks[id].clearFaults();
            world.log(`${id} disk has space again`);
          });
          return true;
        case 'hang-disk': {
          // The node's disk stops answering (writes and syncs wait), past every timeout, then
          // goes on: the node must have been fenced meanwhile if it was failed over.
          if (!world.isUp(id)) return false;
          const disk = world.disks[id];
          disk.hang(/wal|snapshot|meta/);
          world.log(`${id} disk hangs`);
          later(100 + r() * 6000, () => {
            // A node crashed meanwhile: its old process's writes never complete.
            if (world.disks[id] !== disk) return;
            disk.unhang();
            world.log(`${id} disk answers again`);
          });
          return true;
        }
        case 'bit-flip': {
          // Damage synced WAL data of a stopped node: the node must refuse to start.
          if (!world.isDown(id) || !mayDestroy(id)) return false;
          const files = world.disks[id]
            .files()
            .filter((f) => f.includes('/wal/') && f.endsWith('.wal'));
          if (files.length === 0) return false;
          const file = pick(files);
          const size = world.disks[id].contents(file).length;
          if (size === 0) return false;
          const offset = Math.floor(r() * size);
          world.disks[id].flipBit(file, offset, Math.floor(r() * 8));
          destroyed.add(id); // detected at start: the node gets a new disk
          world.log(`${id} bit flipped in ${file} at ${offset}`);
          return true;
        }
        case 'lose-tail': {
          // A stopped node's disk loses the last bytes of its newest WAL segment although they
          // were synced (acknowledged records among them, perhaps): recovery takes it for a torn
          // write and cuts it; the other member holds every acknowledged record.
          if (!world.isDown(id) || !mayDestroy(id)) return false;
          const newest = world.disks[id]
            .files()
            .filter((f) => f.includes('/wal/') && f.endsWith('.wal'))
            .at(-1);
          if (newest === undefined) return false;
          const data = world.disks[id].contents(newest);
          const end = nonZeroEnd(data, 0, data.length);
          if (end === 0) return false;
          const bytes = 1 + Math.floor(r() * Math.min(end, 512));
          let from = end - bytes;
          // Its store may be the only copy (the other node is not known to be in sync): then
          // only a loss recovery can see is modelled — one that tears a record. A loss of whole
          // records there leaves a clean end: the only copy is gone, and nothing can tell.
          const inSync = world.controller?.current?.inSync;
          if (inSync === undefined || !inSync.includes(id === 'a' ? 'b' : 'a')) {
            if (recordStarts(data, newest).has(from)) from += 1;
          }
          world.disks[id].zero(newest, from, end);
          destroyed.add(id);
          world.log(`${id} lost the last ${bytes} synced bytes of ${newest}`);
          return true;
        }
        case 'wipe-disk':
          if (!world.isDown(id) || !mayDestroy(id)) return false;
          destroyed.add(id);
          world.disks[id] = new FaultStorage();
          world.log(`${id} disk replaced (empty)`);
          return true;
        case 'old-disk': {
          const copy = oldCopies[id];
          if (!world.isDown(id) || copy === undefined || !mayDestroy(id)) return false;
          destroyed.add(id);
          world.disks[id] = copy.crash(); // a fresh copy of the old one
          world.log(`${id} disk replaced by an old copy`);
          return true;
        }
      }
    }

    await clock.runUntil(chaosMs);

    // Heal: every link, every disk fault; everything restarted.
    const healAt = clock.monotonicMs();
    heals.splice(0);
    world.healAll();
    for (const id of nodeIds) {
      world.disks[id].clearFaults();
      world.disks[id].unhang();
    }
    if (world.controller === null) await clock.runUntilSettled(world.startController(), 10_000);
    for (const id of nodeIds) {
      world.refusedToStart.delete(id); // retried below as the runbook says
      world.startNode(id);
    }

    // Liveness: each namespace served again within the bound.
    const probe = world.newClient('liveness');
    let recoveredAfterMs: number | null = null;
    const served = new Set<string>();
    const probes = namespaces.map(async (ns) => {
      while (clock.monotonicMs() - healAt < livenessBoundMs) {
        const invokeMs = clock.monotonicMs();
        try {
          const a = await probe.allocate(ns, 1, { deadlineMs: 1000 });
          history.push({
            ns,
            first: BigInt(a.first),
            count: 1,
            invokeMs,
            completeMs: clock.monotonicMs(),
            outcome: 'ok',
          });
          served.add(ns);
          return;
        } catch {
          history.push({
            ns,
            first: null,
            count: 1,
            invokeMs,
            completeMs: clock.monotonicMs(),
            outcome: 'unknown',
          });
          // Refused again at once (a node still starting): wait before the next try.
          await sleep(clock, 100);
        }
      }
    });
    const allProbed = Promise.all(probes);
    let probed = false;
    void allProbed.then(() => (probed = true));
    while (!probed && clock.monotonicMs() - healAt < livenessBoundMs + 5000) {
      await clock.runUntil(clock.monotonicMs() + 100);
      // The runbook for a node that refuses to start: damage found (CorruptionError) → a new
      // disk, unless that would leave no store with the history; anything else (a full disk
      // at start) → start it again.
      for (const id of nodeIds) {
        const why = world.refusedToStart.get(id);
        if (why === undefined) continue;
        world.refusedToStart.delete(id);
        if (why === 'CorruptionError') {
          if (!mayDestroy(id)) continue;
          destroyed.add(id);
          world.disks[id] = new FaultStorage();
          world.log(`${id} disk replaced after its refusal`);
        }
        world.startNode(id);
      }
    }
    let waitsForOperator: string | null = null;
    if (served.size === namespaces.length) recoveredAfterMs = clock.monotonicMs() - healAt;
    else {
      // Two states are refusals by design, each with a runbook: the only copy of the
      // acknowledged history is gone (a forced promotion with a skip-ahead), or a controller
      // that lost its disk cannot prove which node holds it (--bootstrap). Anything else is a
      // liveness failure.
      const why = world.controller?.blocked ?? 'controller down';
      world.log(`not serving after the heal: ${why}`);
      const state = operatorStates.find(([, text]) => why.includes(text));
      if (state !== undefined) waitsForOperator = `${state[0]}: ${why}`;
      else
        fail(
          `liveness: ${namespaces.length - served.size} namespace(s) not served within ${livenessBoundMs} ms of the heal: ${why}`,
        );
    }

    stopping = true;
    let loopsDone = false;
    void Promise.all(loops).then(() => (loopsDone = true));
    while (!loopsDone && clock.monotonicMs() - healAt < livenessBoundMs + 20_000) {
      await clock.runUntil(clock.monotonicMs() + 100);
    }
    if (!loopsDone) fail('clients: allocate() calls still pending long after their deadlines');
    clock.clearInterval(watch);

    const report = checkHistory(history, { maxViolations: 5 });
    for (const v of report.violations) fail(`history: ${v.kind}: ${v.message}`);
    for (const err of unhandled) fail(`unhandled: ${err}`);
    for (const why of world.broken) fail(why);

    const hash = createHash('sha256');
    for (const line of world.trace) hash.update(line + '\n');
    for (const op of history) hash.update(formatHistoryLine(op) + '\n');
    return {
      seed: opts.seed,
      digest: hash.digest('hex').slice(0, 16),
      operations: history.length,
      acknowledged: report.acknowledged,
      faults,
      faultCount: Object.values(faults).reduce((a, b) => a + (b ?? 0), 0),
      violations,
      recoveredAfterMs,
      waitsForOperator,
      virtualMs: clock.monotonicMs(),
      trace: world.trace,
    };
  } finally {
    stopping = true;
    // Closing waits on virtual timers too: the clock is driven until everything is closed.
    await clock.runUntilSettled(world.close(), 60_000).catch((err: unknown) => {
      unhandled.push(`closing the world: ${(err as Error).message}`);
    });
    setPlantedBug(null);
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
  }
}

function sleep(clock: SimClock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}
