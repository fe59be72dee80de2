/**
 * Carrying out one scheduled fault on the running cluster: apply it, hold it for its time,
 * undo it. Destroying a node's data (disk-tail, disk-wipe) is done only while the other node
 * holds the history — the controller lists it in the in-sync set after the node to be damaged
 * was killed, so no acknowledgement can have been made without it since, and it answers on the
 * data directory the controller knows, not catching up (holdsHistory) — else the node is
 * started again undamaged and the fault is skipped: losing every copy is outside what Tally
 * promises to survive (it would wait for an operator's forced promotion, a "liveness failure"
 * that is no bug).
 */
import { damageTail, fill, unfill, wipe } from './disk';
import type { ChaosCluster } from './cluster';
import { host } from './net-lab';
import { type Fault, members, type Member, type NodeId, resourcesOf } from './schedule';

/** How long a data-destroying fault waits for the other node to be in sync before it. */
const historyWaitMs = 10_000;

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** What happened to a fault: applied (it counts), or skipped and why. */
export interface FaultResult {
  fault: Fault;
  applied: boolean;
  note: string;
}

/** Per-resource locks: a fault waits until nothing else holds what it needs. */
export class Locks {
  private readonly tails = new Map<string, Promise<void>>();

  async acquire(resources: string[]): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const before = resources.map((r) => this.tails.get(r) ?? Promise.resolve());
    for (const r of resources) this.tails.set(r, held);
    await Promise.all(before);
    return release;
  }
}

const other = (id: NodeId): NodeId => (id === 'a' ? 'b' : 'a');

function isNode(m: Member): m is NodeId {
  return m !== 'controller';
}

/** The cuts [from, to] a partition fault makes. */
export function cutsOf(f: Fault): Array<[string, string]> {
  const both = (x: string, y: string): Array<[string, string]> => [
    [x, y],
    [y, x],
  ];
  switch (f.kind) {
    case 'partition-full':
      return [...members.filter((m) => m !== f.target), host].flatMap((m) => both(f.target, m));
    case 'partition-one-way':
      return [[f.target, f.peer as string]];
    case 'partition-primary-standby':
    case 'partition-node-controller':
      return both(f.target, f.peer as string);
    case 'partition-client-node':
      return both(host, f.target);
    default:
      return [];
  }
}

/**
 * Does `id` hold every acknowledged record (checked within ms)? The controller's in-sync set
 * alone is not enough: a controller that is down or has not yet seen `id` restart still lists
 * it after the runner replaced its disk (a garbled WAL) — destroying the other node's data then
 * destroys the last copy (the 2,000 s run, seed 1203: b's disk replaced, a wiped 2 s later, the
 * cluster rightly waited for an operator for the rest of the run). So `id` must also answer
 * with the data directory the controller knows (the same incarnation), not be catching up (a
 * standby that is new or rejoined), not have cut a torn tail (a primary's Status says so), and
 * not have a WAL the runner garbled.
 */
export async function holdsHistory(
  cluster: ChaosCluster,
  id: NodeId,
  ms: number,
): Promise<boolean> {
  const end = Date.now() + ms;
  do {
    if (!cluster.garbled.has(id)) {
      const c = await cluster.config(500);
      const known = c?.members.find((m) => m.id === id)?.incarnation;
      if (c !== null && c.inSync.includes(id) && known !== undefined) {
        const s = await cluster.nodeStatus(id, 500);
        const sameDir = s !== null && s.incarnation === known;
        // A primary that cut a torn tail is not caught up either (its Status says tailCut).
        if (sameDir && s.replication?.catchingUp !== true && !s.tailCut) return true;
      }
    }
    await sleep(100);
  } while (Date.now() < end);
  return false;
}

async function downFor(
  cluster: ChaosCluster,
  m: Member,
  holdMs: number,
  between?: () => Promise<void>,
) {
  cluster.heldDown.add(m);
  try {
    await cluster.procs[m].kill();
    await between?.();
    await sleep(holdMs);
  } finally {
    cluster.heldDown.delete(m);
    if (!cluster.procs[m].running) cluster.procs[m].start();
  }
}

/** Kills node `id`, destroys its data with `destroy` if the other node holds the history. */
async function destroyData(
  cluster: ChaosCluster,
  f: Fault,
  destroy: (id: NodeId) => Promise<string>,
): Promise<string | null> {
  const id = f.target as NodeId;
  if (!(await holdsHistory(cluster, other(id), historyWaitMs))) return null;
  let note: string | null = null;
  await downFor(cluster, id, f.holdMs, async () => {
    // Checked again with the node dead: nothing can be acknowledged without the other since.
    if (await holdsHistory(cluster, other(id), 2000)) note = await destroy(id);
  });
  return note;
}

/** Applies `f`, holds it, undoes it. Returns whether it was applied (it counts) and how. */
export async function runFault(cluster: ChaosCluster, f: Fault): Promise<FaultResult> {
  const result = (applied: boolean, note: string): FaultResult => ({ fault: f, applied, note });
  const m = f.target;
  switch (f.kind) {
    case 'kill':
      await downFor(cluster, m, f.holdMs);
      return result(true, `down ${f.holdMs} ms`);
    case 'pause': {
      const p = cluster.procs[m];
      if (!p.running) return result(false, 'not running (restarting after an exit)');
      p.pause();
      await sleep(f.holdMs);
      p.resume();
      return result(true, `paused ${f.holdMs} ms`);
    }
    case 'disk-tail':
    case 'disk-wipe': {
      if (!isNode(m)) throw new Error(`chaos: ${f.kind} on ${m}`);
      const note = await destroyData(cluster, f, async (id) => {
        const dir = cluster.layout.dataDir[id];
        if (f.kind === 'disk-wipe') {
          await wipe(dir);
          cluster.garbled.delete(id);
          return `wiped, down ${f.holdMs} ms`;
        }
        const done = await damageTail(dir, f.damage ?? 'torn', f.damageSeed ?? 0);
        if (done.bytes === 0) return `nothing to damage (${done.segment ?? 'no segment'} empty)`;
        if (f.damage === 'garbled') cluster.garbled.add(id);
        return `${f.damage} ${done.bytes} bytes at ${done.at} of ${done.segment}, down ${f.holdMs} ms`;
      });
      return note === null
        ? result(false, `${other(m)} not in sync: ${m} may hold the only copy`)
        : result(true, note);
    }
    case 'enospc': {
      if (!isNode(m)) throw new Error(`chaos: enospc on ${m}`);
      const ballast = cluster.ballastPath(m);
      cluster.noteDiskFull(m, true);
      const bytes = await fill(ballast);
      await sleep(f.holdMs);
      await unfill(ballast);
      cluster.noteDiskFull(m, false);
      return result(true, `disk full for ${f.holdMs} ms (${Math.round(bytes / 1024)} KiB ballast)`);
    }
    default: {
      const lab = cluster.lab;
      if (lab === null) throw new Error(`chaos: ${f.kind} without network namespaces`);
      const cuts = cutsOf(f);
      for (const [from, to] of cuts) lab.cut(from, to);
      await sleep(f.holdMs);
      for (const [from, to] of cuts) lab.uncut(from, to);
      return result(true, `cut ${f.holdMs} ms`);
    }
  }
}

/** runFault under the fault's locks. */
export async function runLocked(
  locks: Locks,
  cluster: ChaosCluster,
  f: Fault,
): Promise<FaultResult> {
  const release = await locks.acquire(resourcesOf(f));
  try {
    return await runFault(cluster, f);
  } finally {
    release();
  }
}
