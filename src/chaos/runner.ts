/**
 * One chaos run: lay out and start the cluster, start the clients, carry out the seeded fault
 * schedule, heal everything, wait (bounded) until the cluster serves again with both nodes in
 * sync, stop the clients, take one more allocation per namespace, and check the history.
 *
 * The verdict is FAIL when the history breaks an invariant (an ID acknowledged twice, a later
 * allocation below one that completed before it was invoked), when a final allocation is not
 * above every ID acknowledged in its namespace (backwards), when the cluster does not recover
 * within the bound (liveness), or when a process exited by itself (nothing in the schedule asks
 * for that: a crash) — except a node refusing a WAL the runner garbled (the design), and a node
 * stopping on ENOSPC while its disk was full (fail-stop; a failure under --strict-exits).
 * Everything it makes — processes, network namespaces and routes, tmpfs
 * mounts, temp dirs — is undone before it returns, also when it fails or is aborted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  type CheckReport,
  checkHistory,
  formatHistoryLine,
  type Violation,
} from '../check/history';
import { TallyClient } from '../client';
import { ChaosCluster } from './cluster';
import { tmpfsUnavailable } from './disk';
import { type FaultResult, Locks, runLocked, sleep } from './faults';
import { HistoryRecorder, Load } from './load';
import { NetLab } from './net-lab';
import { failures, formatReport } from './report';
import type { Recovery, RunOptions } from './types';
import { describeFault, type FaultKind, kindNeeds, makeSchedule, type Schedule } from './schedule';

/** The runner could not run as asked (a missing capability under --require-all, no build). */
export class RunnerError extends Error {}

export interface RunResult {
  pass: boolean;
  report: string;
}

/** What this machine cannot do, by need. */
function capabilities(): { netns: string | null; tmpfs: string | null } {
  return { netns: NetLab.unavailable(), tmpfs: tmpfsUnavailable() };
}

/** The kinds this machine can run; one line for each one it cannot. */
export function usableKinds(
  wanted: FaultKind[],
  requireAll: boolean,
  say: (l: string) => void,
): FaultKind[] {
  const missing = capabilities();
  const usable: FaultKind[] = [];
  const skipped: string[] = [];
  for (const kind of wanted) {
    const need = kindNeeds(kind);
    const why = need === null ? null : missing[need];
    if (why === null) usable.push(kind);
    else skipped.push(`${kind}: ${why}`);
  }
  if (skipped.length > 0 && requireAll) {
    throw new RunnerError(`--require-all, but this machine cannot run: ${skipped.join('; ')}`);
  }
  for (const s of skipped) say(`skipping ${s}`);
  if (usable.length === 0) throw new RunnerError('no fault kind can run on this machine');
  return usable;
}

/** Waits until an ok answer came after `healedMs` and both nodes are in sync, caught up. */
async function awaitRecovery(
  cluster: ChaosCluster,
  recorder: HistoryRecorder,
  healedMs: number,
  timeoutMs: number,
): Promise<Recovery> {
  const r: Recovery = { recovered: false, servingAfterMs: null, inSyncAfterMs: null, why: '' };
  const end = recorder.now() + timeoutMs;
  for (;;) {
    const lastOk = recorder.lastOk;
    if (r.servingAfterMs === null && lastOk !== null && lastOk > healedMs) {
      r.servingAfterMs = lastOk - healedMs;
    }
    if (r.inSyncAfterMs === null) {
      const why = await notInSync(cluster);
      if (why === null) r.inSyncAfterMs = recorder.now() - healedMs;
      else r.why = why;
    }
    if (r.servingAfterMs !== null && r.inSyncAfterMs !== null) return { ...r, recovered: true };
    if (recorder.now() > end) {
      if (r.servingAfterMs === null) r.why = `no allocation acknowledged; ${r.why}`;
      return r;
    }
    await sleep(250);
  }
}

/** null when both nodes are in sync and the standby is caught up, else what is missing. */
async function notInSync(cluster: ChaosCluster): Promise<string | null> {
  const c = await cluster.config(1000);
  if (c === null) return 'the controller does not answer';
  if (c.promoting) return `promoting ${c.primary.id}`;
  if (c.blocked !== '') return `not serving: ${c.blocked}`;
  if (c.inSync.length !== 2) return `in sync: [${c.inSync.join(',')}]`;
  const p = await cluster.nodeStatus(c.primary.id as 'a' | 'b');
  const s = await cluster.nodeStatus(c.standby.id as 'a' | 'b');
  if (p === null || p.role !== 'primary' || p.state !== 'serving') {
    return `primary ${c.primary.id}: ${p === null ? 'no answer' : `${p.role} ${p.state}`}`;
  }
  if (s === null || s.role !== 'standby' || s.replication?.catchingUp !== false) {
    return `standby ${c.standby.id}: ${s === null ? 'no answer' : `${s.role}, catching up ${s.replication?.catchingUp}`}`;
  }
  return null;
}

/** Waits until the cluster acknowledged an allocation through a client (setup). */
async function firstAck(recorder: HistoryRecorder, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (recorder.lastOk === null) {
    if (Date.now() > end) throw new RunnerError(`the cluster did not serve within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * After the load stopped: one allocation per namespace through a fresh client. Each must be
 * above every ID acknowledged in its namespace; they are recorded in the history too.
 */
async function finalAllocations(
  recorder: HistoryRecorder,
  cluster: ChaosCluster,
  namespaces: string[],
  deadlineMs: number,
): Promise<Violation[]> {
  const highest = recorder.highestAcked();
  const { a, b } = cluster.layout.address;
  const client = new TallyClient({ addresses: [a, b] });
  const violations: Violation[] = [];
  try {
    for (const ns of namespaces) {
      const op = await recorder.allocate(client, ns, 1, deadlineMs);
      const top = highest.get(ns) ?? 0n;
      if (op.outcome !== 'ok') {
        violations.push({
          kind: 'backwards',
          message: `chaos: ${ns}: the final allocation failed (${op.outcome})`,
          a: op,
        });
      } else if ((op.first as bigint) <= top) {
        violations.push({
          kind: 'backwards',
          message: `chaos: ${ns}: the final allocation got ${op.first}, not above ${top} acknowledged before`,
          a: op,
        });
      }
    }
  } finally {
    client.close();
  }
  return violations;
}

/** Runs the schedule; resolves with every fault's result once all have been undone. */
async function runSchedule(
  schedule: Schedule,
  cluster: ChaosCluster,
  recorder: HistoryRecorder,
  signal: AbortSignal,
  say: (l: string) => void,
): Promise<FaultResult[]> {
  const locks = new Locks();
  const startedMs = recorder.now();
  const running: Array<Promise<FaultResult>> = [];
  for (const f of schedule.faults) {
    const waitMs = startedMs + f.startMs - recorder.now();
    if (waitMs > 0) await sleep(waitMs);
    if (signal.aborted) break;
    const role = cluster.roleOf(f.target);
    const t = recorder.now();
    const task = runLocked(locks, cluster, f).then(
      (r) => {
        const where = `+${(t / 1000).toFixed(1)}s`;
        say(
          `${where} #${f.seq} ${describeFault(f)} (${role}): ${r.applied ? r.note : `skipped: ${r.note}`}`,
        );
        return r;
      },
      (err: Error) => {
        say(`#${f.seq} ${describeFault(f)} failed: ${err.message}`);
        return { fault: f, applied: false, note: `error: ${err.message}` };
      },
    );
    running.push(task);
  }
  return Promise.all(running);
}

export async function run(
  opts: RunOptions,
  signal: AbortSignal,
  say: (l: string) => void,
): Promise<RunResult> {
  const kinds = usableKinds(opts.kinds, opts.requireAll, say);
  const schedule = makeSchedule(opts.seed, opts.durationSec * 1000, kinds);
  say(
    `seed ${opts.seed}, ${opts.durationSec} s, ${schedule.faults.length} faults scheduled, schedule digest ${schedule.digest} (kinds: ${kinds.join(',')})`,
  );
  const history = openHistory(opts.historyPath);
  const recorder = new HistoryRecorder((op) => history.write(`${formatHistoryLine(op)}\n`));
  const runDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'tally-chaos-'));
  const tmpfs = kinds.includes('enospc');
  let lab: NetLab | null = null;
  let cluster: ChaosCluster | null = null;
  let load: Load | null = null;
  let pass = false;
  try {
    if (kinds.some((k) => kindNeeds(k) === 'netns')) lab = NetLab.create(['controller', 'a', 'b']);
    say(`run dir ${runDir}${lab === null ? '' : `, network namespaces ${lab.prefix}-*`}`);
    cluster = await ChaosCluster.lay(
      runDir,
      lab,
      tmpfs,
      () => recorder.now(),
      (l) => say(`+${(recorder.now() / 1000).toFixed(1)}s ${l}`),
    );
    await cluster.start();
    cluster.watch();
    const { a, b, controller } = cluster.layout.address;
    const namespaces = Array.from({ length: opts.namespaces }, (_, i) => `chaos-${i}`);
    load = new Load(recorder, { nodes: [a, b], controller }, { ...opts, namespaces });
    await firstAck(recorder, 30_000);
    say(
      `cluster serving (${lab === null ? '127.0.0.1' : 'network namespaces'}${tmpfs ? ', nodes on tmpfs' : ''}); faults start`,
    );
    const results = await runSchedule(schedule, cluster, recorder, signal, say);
    await cluster.healAll();
    const healedMs = recorder.now();
    say(
      `+${(healedMs / 1000).toFixed(1)}s healed: every cut removed, every member running; waiting for recovery`,
    );
    const recovery = signal.aborted
      ? { recovered: false, servingAfterMs: null, inSyncAfterMs: null, why: 'aborted' }
      : await awaitRecovery(cluster, recorder, healedMs, opts.recoveryTimeoutSec * 1000);
    await load.stop();
    load = null;
    const finals = recovery.recovered
      ? await finalAllocations(recorder, cluster, namespaces, opts.deadlineMs)
      : [];
    if (history.errored !== null) {
      throw new RunnerError(
        `writing the history to ${opts.historyPath}: ${history.errored.message}`,
      );
    }
    if (opts.plantDuplicate) plantDuplicate(recorder);
    const check: CheckReport = checkHistory(recorder.ops);
    const violations = [...check.violations, ...finals];
    const input = { opts, schedule, results, recorder, cluster, recovery, check, violations };
    pass = failures(input).length === 0;
    return { pass, report: formatReport(input) };
  } finally {
    await load?.stop();
    await cluster?.stop();
    await new Promise<void>((resolve) => history.end(resolve));
    if (cluster === null) lab?.destroy();
    if (!pass) await keepLogs(runDir, `${opts.historyPath}.logs`, say);
    await fs.promises.rm(runDir, { recursive: true, force: true });
  }
}

/** The history file, emptied; a path that cannot be written is the runner's error, at once. */
function openHistory(file: string): fs.WriteStream {
  try {
    fs.writeFileSync(file, '');
  } catch (err) {
    throw new RunnerError(`cannot write the history to ${file}: ${(err as Error).message}`);
  }
  const stream = fs.createWriteStream(file, { flags: 'a' });
  stream.on('error', () => undefined); // seen as stream.errored before the report
  return stream;
}

/** On a failed run: the members' logs next to the history, for whoever looks into it. */
async function keepLogs(runDir: string, to: string, say: (l: string) => void): Promise<void> {
  const logs = (await fs.promises.readdir(runDir)).filter((n) => n.endsWith('.log'));
  if (logs.length === 0) return;
  await fs.promises.mkdir(to, { recursive: true });
  for (const name of logs) await fs.promises.copyFile(path.join(runDir, name), path.join(to, name));
  say(`member logs kept in ${to}`);
}

/** --plant-duplicate: a second acknowledgement of an acknowledged range (tests only). */
function plantDuplicate(recorder: HistoryRecorder): void {
  const ok = recorder.ops.find((op) => op.outcome === 'ok');
  if (ok === undefined) return;
  const now = recorder.now();
  recorder.record({ ...ok, invokeMs: now, completeMs: now });
}
