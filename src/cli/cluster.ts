/**
 * `tally cluster up`: a local cluster in one command — a controller and two nodes (a, b) as
 * child processes on one host, data under --data-dir, every log line prefixed with its
 * process, stopped cleanly (SIGTERM to each, by its own handle) on Ctrl-C / SIGTERM.
 *
 * Ports from --base-port P: node a P (the CLI's default target at the default P), node b P+1,
 * the controller P+2; /metrics at P+1000, P+1001, P+1002.
 * A child that dies is reported and left down: the controller fails over around it, which is
 * what a local cluster is for (kill a node and watch). Exit 0 after a clean stop.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { type Command, Option } from 'commander';
import { CliError, exitUsage, integerArg, out } from './common';

interface ClusterOptions {
  dataDir: string;
  host: string;
  basePort: number;
}

interface Member {
  name: string;
  args: string[];
  proc?: ChildProcess;
}

/** How long a clean stop waits for the children before SIGKILL. */
const stopGraceMs = 15_000;

export type ClusterMember = 'controller' | 'a' | 'b';

export interface ClusterLayout {
  /** Parent of controller/, a/ and b/. */
  dataDir: string;
  /** gRPC HOST:PORT of each member. */
  address: Record<ClusterMember, string>;
  /** /metrics HOST:PORT of each member. */
  metrics: Record<ClusterMember, string>;
  /** Extra controller flags (probe interval, failover timeout). */
  controllerArgs?: string[];
}

/**
 * The `tally` arguments of each member of a local cluster (also used by the failover
 * benchmark and the cluster tests, which place the members themselves).
 */
export function clusterArgs(layout: ClusterLayout): Record<ClusterMember, string[]> {
  const dir = path.resolve(layout.dataDir);
  const node = (id: 'a' | 'b'): string[] => [
    'serve',
    '--id',
    id,
    '--data-dir',
    path.join(dir, id),
    '--listen',
    layout.address[id],
    '--metrics-listen',
    layout.metrics[id],
    '--controller',
    layout.address.controller,
  ];
  return {
    controller: [
      'controller',
      '--data-dir',
      path.join(dir, 'controller'),
      '--listen',
      layout.address.controller,
      '--metrics-listen',
      layout.metrics.controller,
      '--node',
      `a=${layout.address.a}`,
      '--node',
      `b=${layout.address.b}`,
      ...(layout.controllerArgs ?? []),
    ],
    a: node('a'),
    b: node('b'),
  };
}

function members(opts: ClusterOptions): Member[] {
  const at = (offset: number): string => `${opts.host}:${opts.basePort + offset}`;
  const args = clusterArgs({
    dataDir: opts.dataDir,
    address: { a: at(0), b: at(1), controller: at(2) },
    metrics: { a: at(1000), b: at(1001), controller: at(1002) },
  });
  return (['controller', 'a', 'b'] as const).map((name) => ({ name, args: args[name] }));
}

function prefixLines(
  name: string,
  stream: NodeJS.ReadableStream | null,
  write: (s: string) => void,
): void {
  if (stream === null) return;
  const tag = `[${name}]`.padEnd(13);
  readline.createInterface({ input: stream }).on('line', (line) => write(`${tag}${line}\n`));
}

function spawnMember(
  m: Member,
  onExit: (m: Member, code: number | null, signal: string | null) => void,
): void {
  const proc = spawn(process.execPath, [process.argv[1] as string, ...m.args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { LOG_LEVEL: 'warn', ...process.env },
  });
  m.proc = proc;
  prefixLines(m.name, proc.stdout, (s) => process.stdout.write(s));
  prefixLines(m.name, proc.stderr, (s) => process.stderr.write(s));
  proc.on('exit', (code, signal) => onExit(m, code, signal));
}

async function runClusterUp(opts: ClusterOptions): Promise<void> {
  if (opts.basePort + 1002 > 65535) {
    throw new CliError('cluster: --base-port leaves no room for P+1002', exitUsage);
  }
  const all = members(opts);
  let stopping = false;
  const exited = new Map<string, Promise<void>>();
  for (const m of all) {
    exited.set(
      m.name,
      new Promise<void>((resolve) => {
        spawnMember(m, (member, code, signal) => {
          if (!stopping) {
            out(
              `tally: ${member.name} exited (${signal ?? `code ${code}`}); the others keep running\n`,
            );
          }
          resolve();
        });
      }),
    );
  }
  const host = opts.host;
  const p = opts.basePort;
  out(
    [
      `tally: local cluster under ${path.resolve(opts.dataDir)} (Ctrl-C stops it)`,
      `  node a      ${host}:${p}      metrics http://${host}:${p + 1000}/metrics  (starts as primary)`,
      `  node b      ${host}:${p + 1}      metrics http://${host}:${p + 1001}/metrics  (starts as standby)`,
      `  controller  ${host}:${p + 2}      metrics http://${host}:${p + 1002}/metrics`,
      `  try: npx tally alloc --target ${host}:${p} --namespace demo --count 3`,
      `       npx tally status --controller ${host}:${p + 2}`,
      '',
    ].join('\n'),
  );
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    out(`tally: ${signal}: stopping the cluster\n`);
    // The controller first: stopping the primary while it still probes would be a failover.
    const order = all;
    void (async () => {
      const killer = setTimeout(() => {
        for (const m of all) m.proc?.kill('SIGKILL');
      }, stopGraceMs);
      for (const m of order) {
        if (m.proc?.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGTERM');
        await exited.get(m.name);
      }
      clearTimeout(killer);
      out('tally: cluster stopped\n');
      process.exit(0);
    })();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

export function registerCluster(program: Command): void {
  const cluster = program.command('cluster').description('a local cluster for trying Tally out');
  cluster
    .command('up')
    .description(
      'start a controller and two nodes (a primary, b standby) on this host; Ctrl-C stops them',
    )
    .addOption(
      new Option('--data-dir <dir>', 'data for all three (controller/, a/, b/)')
        .env('TALLY_CLUSTER_DATA_DIR')
        .default('./data'),
    )
    .addOption(new Option('--host <host>', 'address to listen on').default('127.0.0.1'))
    .addOption(
      new Option(
        '--base-port <port>',
        'node a; node b on +1, the controller on +2; metrics on +1000..',
      )
        .argParser(integerArg(1, 64_533))
        .default(7400),
    )
    .action(runClusterUp);
}
