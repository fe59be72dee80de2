/**
 * Bugs planted on purpose, to show that the simulator and the chaos runner catch what they are
 * for: each switch breaks one guarantee at the place the real check lives. Off unless a test
 * turns one on — `TALLY_PLANTED_BUG=name` for a process (the chaos runner), setPlantedBug()
 * in-process (the simulator). A node started with one on says so in a warning. Never in
 * production: nothing in the CLI sets it.
 *
 * - ack-before-standby-fsync: the committer acknowledges once the local write is durable,
 *   without waiting for the standby's ack (invariant 2: durable on both nodes).
 * - skip-epoch-check: a standby accepts a Hello from a lower epoch, and keeps taking appends
 *   from a primary whose epoch it no longer holds (fencing).
 * - skip-incarnation-check: a standby follows a primary whose data directory was replaced,
 *   and the controller takes a member's new directory for its old one (the disk-loss checks).
 * - truncate-acked-at-recovery: recovery drops the last record of the log, durable or not.
 */
export const plantedBugNames = [
  'ack-before-standby-fsync',
  'skip-epoch-check',
  'skip-incarnation-check',
  'truncate-acked-at-recovery',
] as const;

export type PlantedBug = (typeof plantedBugNames)[number];

function parse(value: string | undefined): PlantedBug | null {
  if (value === undefined || value === '') return null;
  if (!(plantedBugNames as readonly string[]).includes(value)) {
    throw new Error(
      `TALLY_PLANTED_BUG: unknown bug "${value}" (known: ${plantedBugNames.join(', ')})`,
    );
  }
  return value as PlantedBug;
}

let active: PlantedBug | null = parse(process.env.TALLY_PLANTED_BUG);

/** Is `bug` planted? (A comparison: cheap enough for a per-batch check.) */
export function planted(bug: PlantedBug): boolean {
  return active === bug;
}

/** The planted bug, if any (for a start-up warning). */
export function plantedBug(): PlantedBug | null {
  return active;
}

/** In-process (the simulator): plants `bug`, or none with null. */
export function setPlantedBug(bug: PlantedBug | null): void {
  active = bug;
}
