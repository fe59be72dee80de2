/**
 * The chaos runner's cluster: a controller and two `tally serve --controller` nodes (a, b) as
 * child processes of the runner, each in its own network namespace when a NetLab is given (else
 * all on free ports of 127.0.0.1). Each member has one owner here (MemberProcess) that starts,
 * kills, pauses and resumes it by its own handle, and notices when it exits on its own.
 *
 * Children write their output to a log file per member (not through the runner, which would
 * cost it CPU), get a pipe as stdin and TALLY_STOP_ON_STDIN_EOF=1 (as under `tally cluster up`):
 * if the runner dies without cleaning up, they stop by themselves.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { clusterArgs } from '../cli/cluster';
import { freePort } from '../server/listen';
import type { NetLab } from './net-lab';
import type { Member, NodeId } from './schedule';

/** The built `tally` command next to this file (dist/chaos → dist/cli). */
const cliPath = path.join(__dirname, '..', 'cli', 'main.js');

/** WAL layout for the nodes: small segments and frequent checkpoints keep a small tmpfs enough. */
const nodeFlags = ['--segment-size-bytes', String(1024 * 1024), '--checkpoint-records', '20000'];

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class MemberProcess {
  private proc: ChildProcess | null = null;
  private exitedPromise: Promise<Exit> = Promise.resolve({ code: null, signal: null });
  /** Set while the runner itself is ending the process (a kill fault, cleanup). */
  private stopping = false;
  paused = false;
  starts = 0;

  constructor(
    readonly name: Member,
    readonly address: string,
    private readonly argv: string[],
    readonly logPath: string,
    private readonly onExit: (m: MemberProcess, exit: Exit) => void,
  ) {}

  get running(): boolean {
    return this.proc !== null;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  start(): void {
    if (this.proc !== null) throw new Error(`chaos: ${this.name} is already running`);
    const log = fs.openSync(this.logPath, 'a');
    this.starts++;
    fs.writeSync(log, `--- chaos: start ${this.starts} of ${this.name} ---\n`);
    const [cmd, ...args] = this.argv as [string, ...string[]];
    const proc = spawn(cmd, args, {
      stdio: ['pipe', log, log],
      env: { ...process.env, LOG_LEVEL: 'info', LOG_FORMAT: 'json', TALLY_STOP_ON_STDIN_EOF: '1' },
    });
    fs.closeSync(log); // the child holds its own copy
    this.proc = proc;
    this.paused = false;
    this.exitedPromise = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.proc = null;
        this.paused = false;
        const exit = { code, signal };
        if (!this.stopping) this.onExit(this, exit);
        this.stopping = false;
        resolve(exit);
      });
    });
  }

  /** SIGKILLs the process (paused or not) and waits until it is gone. */
  async kill(): Promise<void> {
    if (this.proc === null) return;
    this.stopping = true;
    this.proc.kill('SIGKILL');
    await this.exitedPromise;
  }

  pause(): void {
    if (this.proc === null) return;
    this.proc.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (this.proc === null) return;
    this.proc.kill('SIGCONT');
    this.paused = false;
  }

  /** The last `bytes` of the member's log (what it said before it exited). */
  logTail(bytes = 2048): string {
    try {
      const fd = fs.openSync(this.logPath, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        const buf = Buffer.alloc(Math.min(bytes, size));
        fs.readSync(fd, buf, 0, buf.length, size - buf.length);
        return buf.toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return '';
    }
  }
}

export interface ClusterLayout {
  /** Holds the members' directories and logs. */
  runDir: string;
  address: Record<Member, string>;
  /** A node's data directory: `disk-ID/data` (disk-ID may be a tmpfs of its own). */
  dataDir: Record<NodeId, string>;
  /** The directory holding a node's data directory (the tmpfs mount point, when there is one). */
  diskDir: Record<NodeId, string>;
  argv: Record<Member, string[]>;
}

/** Addresses, directories and command lines of the three members under `runDir`. */
export async function layCluster(runDir: string, lab: NetLab | null): Promise<ClusterLayout> {
  const at = async (m: Member, port: number): Promise<string> =>
    lab === null ? `127.0.0.1:${await freePort()}` : `${lab.address(m)}:${port}`;
  const address = {
    controller: await at('controller', 7300),
    a: await at('a', 7400),
    b: await at('b', 7400),
  };
  const diskDir = { a: path.join(runDir, 'disk-a'), b: path.join(runDir, 'disk-b') };
  const dataDir = { a: path.join(diskDir.a, 'data'), b: path.join(diskDir.b, 'data') };
  const args = clusterArgs({
    dataDir: runDir,
    address,
    metrics: { controller: '127.0.0.1:0', a: '127.0.0.1:0', b: '127.0.0.1:0' },
  });
  const node = (id: NodeId): string[] => {
    const a = [...args[id], ...nodeFlags];
    a[a.indexOf('--data-dir') + 1] = dataDir[id];
    return a;
  };
  const argv = (m: Member, tallyArgs: string[]): string[] => [
    ...(lab?.wrapper(m) ?? []),
    process.execPath,
    cliPath,
    ...tallyArgs,
  ];
  return {
    runDir,
    address,
    dataDir,
    diskDir,
    argv: {
      controller: argv('controller', args.controller),
      a: argv('a', node('a')),
      b: argv('b', node('b')),
    },
  };
}

export function cliBuilt(): boolean {
  return fs.existsSync(cliPath);
}
