/**
 * `tally cluster up`: a local cluster in one command — a controller and two nodes (a, b) as
 * child processes on one host, data under --data-dir, every log line prefixed with its
 * process, stopped cleanly (SIGTERM to each, by its own handle) on Ctrl-C / SIGTERM.
 *
 * Ports from --base-port P: node a P (the CLI's default target at the default P), node b P+1,
 * the controller P+2; /metrics at P+1000, P+1001, P+1002.
 * A child that dies is reported and left down: the controller fails over around it, which is
 * what a local cluster is for (kill a node and watch); `start NAME` on stdin starts it again
 * (also `stop`, `kill`, `restart`, `ps`). Exit 0 after a clean stop, 1 when every member
 * died by itself or a member did not stop cleanly (its stop failed, or it was killed after
 * the grace). The controller reports who is primary; the banner and its changes say so.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { type Command, Option } from 'commander';
import { ControllerClient } from '../server/controller-client';
import { prettyLine, wantPretty } from '../server/log-format';
import { CliError, exitFailure, exitUsage, integerArg, out } from './common';

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
  pretty: boolean,
): void {
  if (stream === null) return;
  const tag = `[${name}]`.padEnd(13);
  readline.createInterface({ input: stream }).on('line', (line) => {
    write(`${tag}${pretty ? prettyLine(line) : `${line}\n`}`);
  });
}

function running(m: Member): boolean {
  return m.proc !== undefined && m.proc.exitCode === null && m.proc.signalCode === null;
}

/**
 * The children get their own process group (a terminal's Ctrl-C reaches `cluster up` only,
 * which stops them in order) and stop by themselves when `cluster up` dies: their stdin is a
 * pipe from it, and TALLY_STOP_ON_STDIN_EOF=1 makes its end a SIGTERM.
 */
function spawnMember(
  m: Member,
  pretty: boolean,
  onExit: (m: Member, code: number | null, signal: string | null) => void,
): void {
  const proc = spawn(process.execPath, [process.argv[1] as string, ...m.args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
    env: { LOG_LEVEL: 'warn', ...process.env, TALLY_STOP_ON_STDIN_EOF: '1', LOG_FORMAT: 'json' },
  });
  m.proc = proc;
  prefixLines(m.name, proc.stdout, (s) => process.stdout.write(s), false);
  prefixLines(m.name, proc.stderr, (s) => process.stderr.write(s), pretty);
  proc.on('exit', (code, signal) => onExit(m, code, signal));
}

const commandHelp =
  'commands (type and press Enter): stop NAME | kill NAME | start NAME | restart NAME | ps — NAME is controller, a or b';

/** Who is primary, as the controller says; printed when it changes (a failover, a restart). */
function followRoles(controllerAddress: string): () => void {
  const client = new ControllerClient(controllerAddress);
  let last = '';
  let polling = false;
  const timer = setInterval(() => {
    if (polling) return;
    polling = true;
    client
      .getConfig(1000)
      .then(
        (c) => {
          const inSync = c.inSync.includes(c.standby.id) ? 'in sync' : 'not in sync';
          // No epoch here: a primary's own restarts move it without the configuration
          // knowing (`tally status --controller` shows both).
          const now = c.promoting
            ? `promoting ${c.primary.id}`
            : `primary ${c.primary.id}, standby ${c.standby.id} (${inSync})`;
          if (now !== last) out(`tally: ${now}\n`);
          last = now;
        },
        () => undefined, // the controller is down or still starting: its own lines say so
      )
      .finally(() => (polling = false));
  }, 500);
  timer.unref();
  return () => {
    clearInterval(timer);
    client.close();
  };
}

async function runClusterUp(opts: ClusterOptions): Promise<void> {
  if (opts.basePort + 1002 > 65535) {
    throw new CliError('cluster: --base-port leaves no room for P+1002', exitUsage);
  }
  const all = members(opts);
  const byName = new Map(all.map((m) => [m.name, m]));
  const pretty = wantPretty(process.stderr);
  let stopping = false;
  /**
   * Members stopped on purpose (a `stop`/`kill`/`restart` command) and not started since: their
   * exit is not news, and a cluster with one of them down was not brought down by itself.
   */
  const stoppedByUser = new Set<string>();
  const exited = new Map<string, Promise<void>>();
  /** Members whose exit during the final stop was not clean (a failed stop, the SIGKILL). */
  const uncleanStops: string[] = [];
  const launch = (m: Member): void => {
    stoppedByUser.delete(m.name);
    exited.set(
      m.name,
      new Promise<void>((resolve) => {
        spawnMember(m, pretty, (member, code, signal) => {
          const how = signal ?? `code ${code}`;
          if (stopping) {
            // A member still starting has no handler yet: SIGTERM ends it, as it should.
            if (code !== 0 && signal !== 'SIGTERM') uncleanStops.push(`${member.name} (${how})`);
            resolve();
            return;
          }
          if (stoppedByUser.has(member.name)) {
            out(
              `tally: ${member.name} stopped (${how}); \`start ${member.name}\` starts it again\n`,
            );
          } else if (all.every((x) => !running(x)) && stoppedByUser.size === 0) {
            out(`tally: ${member.name} exited (${how}); every member has exited\n`);
          } else {
            out(
              `tally: ${member.name} exited (${how}); the others keep running (\`start ${member.name}\` starts it again)\n`,
            );
          }
          resolve();
          if (all.every((x) => !running(x)) && stoppedByUser.size === 0) {
            out('tally: the cluster is down: no member is running (see the lines above)\n');
            process.exit(exitFailure);
          }
        });
      }),
    );
  };
  for (const m of all) launch(m);
  const host = opts.host;
  const p = opts.basePort;
  const userLevel = process.env.LOG_LEVEL;
  out(
    [
      `tally: local cluster under ${path.resolve(opts.dataDir)} (Ctrl-C stops it)`,
      `  node a      ${host}:${p}      metrics http://${host}:${p + 1000}/metrics`,
      `  node b      ${host}:${p + 1}      metrics http://${host}:${p + 1001}/metrics`,
      `  controller  ${host}:${p + 2}      metrics http://${host}:${p + 1002}/metrics  (decides which node is primary)`,
      `  logs: ${userLevel === undefined ? 'warnings and errors only (LOG_LEVEL=info for more)' : `LOG_LEVEL=${userLevel}`}`,
      `  try: npx tally alloc --controller ${host}:${p + 2} --namespace demo --count 3`,
      `       npx tally status --controller ${host}:${p + 2}`,
      `  ${commandHelp}`,
      '',
    ].join('\n'),
  );
  const stopFollowing = followRoles(`${host}:${p + 2}`);
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const [verb, name] = line.trim().split(/\s+/);
    if (verb === undefined || verb === '') return;
    if (verb === 'ps') {
      for (const m of all) {
        out(`  ${m.name.padEnd(11)} ${running(m) ? `running (pid ${m.proc?.pid})` : 'stopped'}\n`);
      }
      return;
    }
    const m = name === undefined ? undefined : byName.get(name);
    if (m === undefined || !['stop', 'kill', 'start', 'restart'].includes(verb) || stopping) {
      out(`tally: ${stopping ? 'stopping' : `unknown command '${line.trim()}'; ${commandHelp}`}\n`);
      return;
    }
    void (async () => {
      if (verb !== 'start' && running(m)) {
        stoppedByUser.add(m.name);
        m.proc?.kill(verb === 'kill' ? 'SIGKILL' : 'SIGTERM');
        await exited.get(m.name);
      }
      if (verb === 'start' || verb === 'restart') {
        if (running(m)) {
          out(`tally: ${m.name} is running (pid ${m.proc?.pid})\n`);
          return;
        }
        out(`tally: starting ${m.name}\n`);
        launch(m);
      }
    })();
  });
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    stopFollowing();
    out(`tally: ${signal}: stopping the cluster\n`);
    // The controller first: stopping the primary while it still probes would be a failover.
    void (async () => {
      const killer = setTimeout(() => {
        for (const m of all) m.proc?.kill('SIGKILL');
      }, stopGraceMs);
      for (const m of all) {
        if (running(m)) m.proc?.kill('SIGTERM');
        await exited.get(m.name);
      }
      clearTimeout(killer);
      if (uncleanStops.length > 0) {
        out(`tally: cluster stopped; not cleanly: ${uncleanStops.join(', ')}\n`);
        process.exit(exitFailure);
      }
      out('tally: cluster stopped\n');
      process.exit(0);
    })();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', stop);
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
