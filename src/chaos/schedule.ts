/**
 * The chaos runner's fault schedule: a pure function of (seed, duration, fault kinds), so the
 * same seed gives the same faults — kinds, targets, order, start times, hold times — on any
 * machine that runs the same kinds; its digest is printed so two runs can be compared. Time
 * during the run is real, so what the cluster does with the faults can differ run to run.
 *
 * Targets are concrete members (controller, a, b), not roles: roles move with every failover,
 * so "the primary" would make the schedule depend on the run. Half the node faults hit the
 * primary anyway. Faults may overlap (at most faultsConcurrentMax at once), but never two on
 * the same process or the same disk, and never two that destroy data (disk-tail, disk-wipe) at
 * once: the runner only destroys a node's data while the other node holds the history.
 */
import { createHash } from 'node:crypto';
import { seededRandom } from '../core/seeded-random';

export type Member = 'controller' | 'a' | 'b';
export const members: readonly Member[] = ['controller', 'a', 'b'];
export type NodeId = 'a' | 'b';

export const faultKinds = [
  'kill',
  'pause',
  'partition-full',
  'partition-one-way',
  'partition-primary-standby',
  'partition-node-controller',
  'partition-client-node',
  'disk-tail',
  'disk-wipe',
  'enospc',
] as const;
export type FaultKind = (typeof faultKinds)[number];

/** What a kind needs from the machine (the runner skips kinds it cannot run). */
export function kindNeeds(kind: FaultKind): 'netns' | 'tmpfs' | null {
  if (kind.startsWith('partition-')) return 'netns';
  return kind === 'enospc' ? 'tmpfs' : null;
}

/** How the newest WAL segment's tail is damaged (disk-tail). */
export type TailDamage = 'torn' | 'garbled';

export interface Fault {
  /** 1-based position in the schedule. */
  seq: number;
  kind: FaultKind;
  /** The member hit: killed, paused, isolated, the cut's sender, the damaged disk. */
  target: Member;
  /** The other end of a one-way cut or a node↔controller partition. */
  peer?: Member;
  /** ms after the schedule starts. */
  startMs: number;
  /** How long the fault holds before it is undone (a killed member stays down this long). */
  holdMs: number;
  damage?: TailDamage;
  /** Seeds the bytes a disk-tail fault picks and writes. */
  damageSeed?: number;
}

export interface Schedule {
  seed: number;
  durationMs: number;
  kinds: FaultKind[];
  faults: Fault[];
  /** sha256 of the above, first 16 hex digits. */
  digest: string;
}

/** At most this many faults hold at once. */
export const faultsConcurrentMax = 2;
/** The first fault comes this long after the load started (the cluster is seen serving first). */
const firstFaultMs = 1000;
/** Between two faults' starts: uniform in [gapMinMs, gapMaxMs). */
const gapMinMs = 300;
const gapMaxMs = 3000;

/** Relative frequency of each kind; hold times in ms as [min, max). */
const kindTable: Record<FaultKind, { weight: number; holdMs: [number, number] }> = {
  kill: { weight: 4, holdMs: [0, 4000] },
  pause: { weight: 4, holdMs: [100, 3000] },
  'partition-full': { weight: 1.5, holdMs: [500, 6000] },
  'partition-one-way': { weight: 1.5, holdMs: [500, 6000] },
  'partition-primary-standby': { weight: 1, holdMs: [500, 6000] },
  'partition-node-controller': { weight: 1, holdMs: [500, 6000] },
  'partition-client-node': { weight: 1, holdMs: [500, 4000] },
  'disk-tail': { weight: 2, holdMs: [200, 3000] },
  'disk-wipe': { weight: 1, holdMs: [200, 3000] },
  enospc: { weight: 1.5, holdMs: [500, 5000] },
};

/** What a fault holds while it runs: two faults that share any of these never overlap. */
export function resourcesOf(f: Pick<Fault, 'kind' | 'target'>): string[] {
  switch (f.kind) {
    case 'kill':
    case 'pause':
      return [`process:${f.target}`];
    case 'disk-tail':
    case 'disk-wipe': {
      // The other node holds the only copy meanwhile: no kill or full disk on it either.
      const other = f.target === 'a' ? 'b' : 'a';
      return [
        `process:${f.target}`,
        `disk:${f.target}`,
        'history',
        `process:${other}`,
        `disk:${other}`,
      ];
    }
    case 'enospc':
      return [`disk:${f.target}`];
    default:
      return []; // cuts are counted (net-lab.ts): overlapping partitions compose
  }
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)] as T;
}

function pickKind(rand: () => number, kinds: readonly FaultKind[]): FaultKind {
  const total = kinds.reduce((sum, k) => sum + kindTable[k].weight, 0);
  let x = rand() * total;
  for (const k of kinds) {
    x -= kindTable[k].weight;
    if (x < 0) return k;
  }
  return kinds[kinds.length - 1] as FaultKind;
}

/** Target and peer of one fault of `kind`. */
function pickTargets(rand: () => number, kind: FaultKind): Pick<Fault, 'target' | 'peer'> {
  const node = (): NodeId => pick(rand, ['a', 'b'] as const);
  switch (kind) {
    case 'kill':
    case 'pause':
    case 'partition-full':
      return { target: pick(rand, members) };
    case 'partition-one-way': {
      const target = pick(rand, members);
      return {
        target,
        peer: pick(
          rand,
          members.filter((m) => m !== target),
        ),
      };
    }
    case 'partition-primary-standby':
      return { target: 'a', peer: 'b' };
    case 'partition-node-controller':
      return { target: node(), peer: 'controller' };
    default:
      return { target: node() };
  }
}

function between(rand: () => number, [min, max]: [number, number]): number {
  return Math.round(min + rand() * (max - min));
}

export function makeSchedule(seed: number, durationMs: number, kinds: FaultKind[]): Schedule {
  if (kinds.length === 0) throw new Error('chaos: no fault kinds to schedule');
  const rand = seededRandom(seed);
  const faults: Fault[] = [];
  const busyUntil = new Map<string, number>();
  const holding: number[] = []; // end times of the faults scheduled so far
  let t = firstFaultMs;
  while (t < durationMs) {
    const kind = pickKind(rand, kinds);
    const { target, peer } = pickTargets(rand, kind);
    const holdMs = between(rand, kindTable[kind].holdMs);
    const damage: TailDamage | undefined =
      kind === 'disk-tail' ? (rand() < 0.7 ? 'torn' : 'garbled') : undefined;
    const damageSeed = kind === 'disk-tail' ? Math.floor(rand() * 2 ** 32) : undefined;
    const gap = between(rand, [gapMinMs, gapMaxMs]);
    const resources = resourcesOf({ kind, target });
    let startMs = Math.max(t, ...resources.map((r) => busyUntil.get(r) ?? 0));
    // Wait for a slot: the faultsConcurrentMax-th latest end among those still holding.
    const ends = holding.filter((end) => end > startMs).sort((x, y) => y - x);
    if (ends.length >= faultsConcurrentMax) startMs = ends[faultsConcurrentMax - 1] as number;
    if (startMs + holdMs > durationMs) break;
    for (const r of resources) busyUntil.set(r, startMs + holdMs);
    holding.push(startMs + holdMs);
    faults.push({
      seq: faults.length + 1,
      kind,
      target,
      peer,
      startMs,
      holdMs,
      damage,
      damageSeed,
    });
    t = startMs + gap;
  }
  const digest = createHash('sha256')
    .update(JSON.stringify({ seed, durationMs, kinds, faults }))
    .digest('hex')
    .slice(0, 16);
  return { seed, durationMs, kinds, faults, digest };
}

/** "kill a", "partition-one-way a→controller": what a fault does, in a few words. */
export function describeFault(f: Fault): string {
  if (f.kind === 'partition-one-way') return `${f.kind} ${f.target}→${f.peer}`;
  if (f.peer !== undefined) return `${f.kind} ${f.target}↔${f.peer}`;
  if (f.kind === 'disk-tail') return `${f.kind} ${f.target} (${f.damage})`;
  return `${f.kind} ${f.target}`;
}
