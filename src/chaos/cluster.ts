/**
 * The cluster under chaos: the three member processes (members.ts), the network lab and the
 * tmpfs disks they run on, and what the runner learns by watching them — the controller's
 * configuration (polled: roles, the in-sync set, failovers) and processes that exit on their
 * own. It acts as a supervisor would: a member that exits on its own is restarted (and
 * recorded: nothing in the fault schedule should make a process exit by itself), except a
 * node that refuses to start on a WAL the runner garbled — that is the design (corruption is
 * refused), so the runner replaces its disk (wipes it) as an operator would, and starts it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ClusterView } from '../server/controller-service';
import { ControllerClient } from '../server/controller-client';
import { adminClient } from '../cli/common';
import type { StatusResponse__Output } from '../generated/tally/v1/StatusResponse';
import { mountTmpfs, unfill, unmount, wipe } from './disk';
import { type Exit, MemberProcess, layCluster, type ClusterLayout } from './members';
import type { NetLab } from './net-lab';
import { members, type Member, type NodeId } from './schedule';

/** How often the controller's configuration is read while the run goes on. */
const configPollMs = 250;
/** A member that exited on its own is started again after this long. */
const restartDelayMs = 1000;
/** Each node's tmpfs, when there is one: room for its WAL, and small enough to fill at once. */
export const tmpfsBytes = 64 * 1024 * 1024;

/** A process exit nobody asked for. */
export interface ExitEvent {
  member: Member;
  atMs: number;
  exit: Exit;
  /** The last line it logged. */
  said: string;
  kind: ExitKind;
}

/**
 * refused-damage: a node refused to start on a WAL the runner garbled (the design: expected).
 * full-disk: a node stopped on ENOSPC while its disk was full, or just after (fail-stop: safe,
 *   and back once restarted with space; a failure only under --strict-exits).
 * crash: anything else.
 */
export type ExitKind = 'refused-damage' | 'full-disk' | 'crash';

/** An ENOSPC exit this long after the ballast was removed still counts as on a full disk. */
const fullDiskGraceMs = 5000;

/** The last log line of a member (its JSON `msg` and `err` if it logs JSON). */
function lastLine(tail: string): string {
  const lines = tail
    .trimEnd()
    .split('\n')
    .filter((l) => l.trim() !== '');
  const line = lines.at(-1) ?? '';
  try {
    const j = JSON.parse(line) as { msg?: string; err?: unknown };
    const err = typeof j.err === 'string' ? j.err : (j.err as { message?: string })?.message;
    return [j.msg, err].filter((s) => s !== undefined).join(': ') || line;
  } catch {
    return line.slice(0, 300);
  }
}

/** A WAL damaged past a torn tail: what a node says when it refuses to start from it. */
const walRefusal = /wal: .*(segment|offset|missing)/;

export class ChaosCluster {
  readonly procs: Record<Member, MemberProcess>;
  /** Members a fault keeps down on purpose: not restarted by the supervisor. */
  readonly heldDown = new Set<Member>();
  /** Nodes whose WAL was garbled and not replaced since: their refusal to start is expected. */
  readonly garbled = new Set<NodeId>();
  readonly exits: ExitEvent[] = [];
  /** Distinct failovers seen in the configuration, by "atUnixMs from→to". */
  readonly failovers = new Map<string, { from: string; to: string; reason: string }>();
  lastConfig: ClusterView | null = null;
  /** When each node's disk was last full: from, and until (null while it still is). */
  private readonly diskFull = new Map<NodeId, { from: number; until: number | null }>();
  private readonly controller: ControllerClient;
  private readonly timers = new Set<NodeJS.Timeout>();
  private poller: NodeJS.Timeout | null = null;
  private polling = false;
  private stopped = false;
  /** tmpfs mount points made by start(). */
  private readonly mounted: string[] = [];

  private constructor(
    readonly layout: ClusterLayout,
    readonly lab: NetLab | null,
    readonly tmpfs: boolean,
    private readonly now: () => number,
    private readonly log: (line: string) => void,
  ) {
    const make = (m: Member): MemberProcess =>
      new MemberProcess(
        m,
        layout.address[m],
        layout.argv[m],
        path.join(layout.runDir, `${m}.log`),
        (p, e) => this.exited(p, e),
      );
    this.procs = { controller: make('controller'), a: make('a'), b: make('b') };
    this.controller = new ControllerClient(layout.address.controller);
  }

  /** Lays out the cluster under runDir; nothing is made until start(). */
  static async lay(
    runDir: string,
    lab: NetLab | null,
    tmpfs: boolean,
    now: () => number,
    log: (line: string) => void,
  ): Promise<ChaosCluster> {
    return new ChaosCluster(await layCluster(runDir, lab), lab, tmpfs, now, log);
  }

  /**
   * Makes each node's disk (a tmpfs of its own when `tmpfs`) and starts the three members.
   * Whatever it made is undone by stop(), also when it throws.
   */
  async start(): Promise<void> {
    for (const id of ['a', 'b'] as const) {
      const dir = this.layout.diskDir[id];
      await fs.promises.mkdir(dir, { recursive: true });
      if (this.tmpfs) {
        mountTmpfs(dir, tmpfsBytes);
        this.mounted.push(dir);
      }
    }
    for (const m of members) this.procs[m].start();
  }

  /** The role of `m` in the configuration last read: primary, standby or controller. */
  roleOf(m: Member): string {
    if (m === 'controller') return 'controller';
    const c = this.lastConfig;
    if (c === null) return '?';
    return c.primary.id === m ? 'primary' : 'standby';
  }

  /** The controller's configuration, or null if it does not answer within ms. */
  async config(ms = 1000): Promise<ClusterView | null> {
    try {
      const c = await this.controller.getConfig(ms);
      this.noteConfig(c);
      return c;
    } catch {
      return null;
    }
  }

  private noteConfig(c: ClusterView): void {
    this.lastConfig = c;
    const f = c.lastFailover;
    if (f === null || f.kind !== 'failover') return;
    const key = `${f.atUnixMs} ${f.fromNode}→${f.toNode}`;
    if (this.failovers.has(key)) return;
    this.failovers.set(key, { from: f.fromNode, to: f.toNode, reason: f.reason });
    this.log(`failover ${f.fromNode}→${f.toNode} (epoch ${f.epoch}): ${f.reason}`);
  }

  /** Reads the configuration every configPollMs until stop(). */
  watch(): void {
    this.poller = setInterval(() => {
      if (this.polling) return;
      this.polling = true;
      void this.config(configPollMs * 2).finally(() => (this.polling = false));
    }, configPollMs);
  }

  /** A node's Admin.Status, or null if it does not answer within ms. */
  nodeStatus(id: NodeId, ms = 1000): Promise<StatusResponse__Output | null> {
    const client = adminClient(this.layout.address[id]);
    return new Promise((resolve) => {
      client.status({}, { deadline: Date.now() + ms }, (err, res) => {
        client.close();
        resolve(err === null && res !== undefined ? res : null);
      });
    });
  }

  /** The runner filled (full true) or emptied node `id`'s disk. */
  noteDiskFull(id: NodeId, full: boolean): void {
    if (full) this.diskFull.set(id, { from: this.now(), until: null });
    else this.diskFull.set(id, { from: this.diskFull.get(id)?.from ?? 0, until: this.now() });
  }

  private exitKind(m: Member, said: string): ExitKind {
    if (m === 'controller') return 'crash';
    if (this.garbled.has(m) && walRefusal.test(said)) return 'refused-damage';
    const full = this.diskFull.get(m);
    const recently = full !== undefined && (full.until ?? Infinity) + fullDiskGraceMs > this.now();
    return recently && said.includes('ENOSPC') ? 'full-disk' : 'crash';
  }

  private exited(p: MemberProcess, exit: Exit): void {
    if (this.stopped) return;
    const m = p.name;
    const said = lastLine(p.logTail());
    const kind = this.exitKind(m, said);
    this.exits.push({ member: m, atMs: this.now(), exit, said, kind });
    const how = exit.signal ?? `code ${exit.code}`;
    if (kind === 'refused-damage') {
      this.log(
        `${m} refused to start on its garbled WAL (as designed): ${said}; replacing its disk`,
      );
      this.garbled.delete(m as NodeId);
      void wipe(this.layout.dataDir[m as NodeId]).then(() => this.restart(m, 0));
      return;
    }
    const what = kind === 'full-disk' ? 'stopped on its full disk' : 'UNEXPECTED: exited by itself';
    this.log(`${m} ${what} (${how}): ${said}; restarting it`);
    this.restart(m, restartDelayMs);
  }

  private restart(m: Member, delayMs: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const p = this.procs[m];
      if (!this.stopped && !p.running && !this.heldDown.has(m)) p.start();
    }, delayMs);
    this.timers.add(timer);
  }

  /**
   * Undoes whatever faults left behind (a safety net after every fault undid itself): every cut
   * healed, every member running and resumed, every ballast removed.
   */
  async healAll(): Promise<void> {
    this.lab?.healAll();
    this.heldDown.clear();
    for (const m of members) {
      const p = this.procs[m];
      if (!p.running) p.start();
      else if (p.paused) p.resume();
    }
    for (const id of ['a', 'b'] as const) await unfill(this.ballastPath(id));
  }

  ballastPath(id: NodeId): string {
    return path.join(this.layout.diskDir[id], 'ballast');
  }

  /** Kills every member, unmounts the disks, destroys the lab. Never throws; idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poller !== null) clearInterval(this.poller);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all(members.map((m) => this.procs[m].kill()));
    this.controller.close();
    for (const dir of this.mounted.splice(0)) {
      try {
        unmount(dir);
      } catch (err) {
        this.log(`could not unmount ${dir}: ${(err as Error).message}`);
      }
    }
    this.lab?.destroy();
  }
}
