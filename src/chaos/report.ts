/**
 * The chaos runner's report: plain lines a person reads and a script can grep (`N faults`,
 * `verdict: PASS`).
 */
import type { CheckReport, HistoryOp, Violation } from '../check/history';
import type { ChaosCluster, ExitEvent } from './cluster';
import type { FaultResult } from './faults';
import type { HistoryRecorder } from './load';
import type { Recovery, RunOptions } from './types';
import type { Schedule } from './schedule';

export interface ReportInput {
  opts: RunOptions;
  schedule: Schedule;
  results: FaultResult[];
  recorder: HistoryRecorder;
  cluster: ChaosCluster;
  recovery: Recovery;
  check: CheckReport;
  violations: Violation[];
}

/** Violations listed in full; the rest are counted. */
const violationsShownMax = 10;

const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

function tally<T>(items: T[], key: (t: T) => string): string {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k} ${n}`).join(', ');
}

function opText(op: HistoryOp | undefined): string {
  if (op === undefined) return '';
  const ids = op.first === null ? op.outcome : `${op.first}+${op.count}`;
  return ` [${op.ns} ${ids}, invoked ${op.invokeMs} ms, completed ${op.completeMs} ms]`;
}

const exitText = (e: ExitEvent): string =>
  e.kind === 'refused-damage'
    ? `${e.member} refused its garbled WAL`
    : e.kind === 'full-disk'
      ? `${e.member} stopped on its full disk: ${e.said}`
      : `${e.member} CRASHED: ${e.said}`;

/** Why the run failed, one phrase each (empty when it passed). */
export function failures(input: ReportInput): string[] {
  const { opts, results, recovery, cluster, violations } = input;
  const out: string[] = [];
  if (violations.length > 0) out.push(`${violations.length} violation(s)`);
  if (!recovery.recovered) {
    out.push(`not recovered within ${opts.recoveryTimeoutSec} s (${recovery.why})`);
  }
  const crashes = cluster.exits.filter(
    (e) => e.kind === 'crash' || (e.kind === 'full-disk' && opts.strictExits),
  );
  if (crashes.length > 0) out.push(`${crashes.length} process exit(s) nobody asked for`);
  const applied = results.filter((r) => r.applied).length;
  if (applied < opts.minFaults)
    out.push(`${applied} faults applied, --min-faults ${opts.minFaults}`);
  return out;
}

export function formatReport(input: ReportInput): string {
  const { schedule, results, recorder, cluster, recovery, check, violations } = input;
  const applied = results.filter((r) => r.applied);
  const skipped = results.length - applied.length;
  const ops = recorder.ops;
  const count = (o: HistoryOp['outcome']): number => ops.filter((op) => op.outcome === o).length;
  const failovers = [...cluster.failovers.values()];
  const exits = cluster.exits;
  const why = failures(input);
  const lines = [
    `seed: ${schedule.seed}, schedule digest ${schedule.digest}`,
    `operations: ${check.operations} (ok ${count('ok')}, fail ${count('fail')}, unknown ${count('unknown')})`,
    `errors: ${[...recorder.errors].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
    `acknowledged: ${check.acknowledged} in ${check.namespaces} namespaces`,
    `acknowledged IDs: ${check.acknowledgedIds}`,
    `${applied.length} faults`,
    `faults by kind: ${tally(applied, (r) => r.fault.kind) || 'none'}${skipped > 0 ? `; ${skipped} skipped` : ''}`,
    `failovers: ${failovers.length}${failovers.length > 0 ? ` (${tally(failovers, (f) => `${f.from}→${f.to}`)})` : ''}`,
    `longest unavailability: ${seconds(recorder.longestGapMs)} (from +${seconds(recorder.longestGapFromMs)})`,
    `recovery: ${
      recovery.recovered
        ? `serving ${seconds(recovery.servingAfterMs ?? 0)} and in sync ${seconds(recovery.inSyncAfterMs ?? 0)} after the heal`
        : `NOT RECOVERED: ${recovery.why}`
    }`,
    `process exits by themselves: ${exits.length}${exits.length > 0 ? ` (${tally(exits, exitText)})` : ''}`,
    `history: ${input.opts.historyPath} (${ops.length} lines)`,
    ...violations
      .slice(0, violationsShownMax)
      .map((v) => `violation: ${v.kind}: ${v.message}${opText(v.a)}${opText(v.b)}`),
    ...(violations.length > violationsShownMax
      ? [`violation: … and ${violations.length - violationsShownMax} more`]
      : []),
    `verdict: ${why.length === 0 ? 'PASS' : `FAIL: ${why.join('; ')}`}`,
  ];
  return lines.join('\n');
}
