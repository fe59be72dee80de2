/**
 * Failpoints for tests that need a process to stop at an exact step (etcd's gofail idea):
 * `TALLY_FAILPOINTS=controller.beforePromote=sleep(5000)` makes that step wait 5 s, so a test
 * can SIGKILL the process inside it. Read once at start; without the variable every failpoint
 * is a resolved promise. Not for production use.
 */
import { sleep, systemClock, type Clock } from './clock';

const configured = parse(process.env.TALLY_FAILPOINTS ?? '');

function parse(spec: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of spec.split(',').filter((p) => p.trim() !== '')) {
    const m = /^\s*([\w.-]+)=sleep\((\d+)\)\s*$/.exec(part);
    if (m === null) throw new Error(`failpoints: cannot parse "${part}" (expected name=sleep(ms))`);
    out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

/** Waits as configured for `name`, on the caller's clock (virtual in the simulator). */
export function failpoint(name: string, clock: Clock = systemClock): Promise<void> {
  const ms = configured.get(name);
  if (ms === undefined) return Promise.resolve();
  return sleep(clock, ms);
}
