/**
 * Helpers for integration tests: run the built CLI (dist/cli/main.js) as real child
 * processes, parse the `serving` line, talk real gRPC. Every child is tracked and killed by
 * its own handle in killChildren(); every temp dir is removed in removeTempDirs().
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '../../src/server/proto';
import type { AdminClient } from '../../src/generated/tally/v1/Admin';
import type { AllocateRequest } from '../../src/generated/tally/v1/AllocateRequest';
import type { AllocateResponse__Output } from '../../src/generated/tally/v1/AllocateResponse';
import type { CounterClient } from '../../src/generated/tally/v1/Counter';
import type { StatusResponse__Output } from '../../src/generated/tally/v1/StatusResponse';

export const repoRoot = path.join(__dirname, '..', '..');
export const cliPath = path.join(repoRoot, 'dist', 'cli', 'main.js');

export function assertBuilt(): void {
  if (!fs.existsSync(cliPath)) throw new Error(`test: ${cliPath} missing; run npm run build`);
}

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];

export async function tempDir(prefix = 'tally-it-'): Promise<string> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  const dirs = tempDirs.splice(0);
  await Promise.all(dirs.map((d) => fs.promises.rm(d, { recursive: true, force: true })));
}

export { freePort } from '../../src/server/listen';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Child {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<Exit>;
}

/**
 * Spawns `node dist/cli/main.js …args`; LOG_LEVEL defaults to warn to keep output small.
 * `wrapper` runs it through another command that execs it in place (`ip netns exec NS`), so
 * the handle's pid is still the node process.
 */
export function spawnCli(
  args: string[],
  env: Record<string, string> = {},
  wrapper: string[] = [],
  opts: { stdin?: boolean } = {},
): Child {
  const argv = [...wrapper, process.execPath, cliPath, ...args];
  const proc = spawn(argv[0] as string, argv.slice(1), {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: [opts.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let out = '';
  let err = '';
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<Exit>((resolve) => {
    proc.on('close', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal });
    });
  });
  return { proc, stdout: () => out, stderr: () => err, exited };
}

export interface CliRun extends Exit {
  stdout: string;
  stderr: string;
}

/** Runs a CLI command to completion. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const child = spawnCli(args, env);
  const exit = await child.exited;
  return { ...exit, stdout: child.stdout(), stderr: child.stderr() };
}

export interface Server extends Child {
  grpcPort: number;
  metricsPort: number;
  target: string;
}

interface ServingLine {
  event: 'serving';
  grpcPort: number;
  metricsPort: number;
  pid: number;
}

function servingLine(stdout: string): ServingLine | null {
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const parsed = JSON.parse(line) as ServingLine;
    if (parsed.event === 'serving') return parsed;
  }
  return null;
}

/** `serve` arguments for a node on dataDir with free ports on 127.0.0.1. */
export function serveArgs(dataDir: string, id = 'n1'): string[] {
  return [
    'serve',
    '--id',
    id,
    '--data-dir',
    dataDir,
    '--listen',
    '127.0.0.1:0',
    '--metrics-listen',
    '127.0.0.1:0',
  ];
}

/** Starts `tally serve` on 127.0.0.1 port 0 and resolves once it has printed its ports. */
export async function startServe(
  dataDir: string,
  extraArgs: string[] = [],
  opts: { id?: string; env?: Record<string, string> } = {},
): Promise<Server> {
  const child = spawnCli([...serveArgs(dataDir, opts.id), ...extraArgs], opts.env);
  const line = await new Promise<ServingLine>((resolve, reject) => {
    const onData = (): void => {
      const found = servingLine(child.stdout());
      if (found === null) return;
      child.proc.stdout?.off('data', onData);
      resolve(found);
    };
    child.proc.stdout?.on('data', onData);
    void child.exited.then((exit) =>
      reject(new Error(`test: serve exited (${exit.code ?? exit.signal}): ${child.stderr()}`)),
    );
  });
  const target = `127.0.0.1:${line.grpcPort}`;
  return { ...child, grpcPort: line.grpcPort, metricsPort: line.metricsPort, target };
}

/** SIGKILLs every child still running, each by its own handle, and waits for it. */
export async function killChildren(): Promise<void> {
  const running = [...children];
  await Promise.all(
    running.map(
      (proc) =>
        new Promise<void>((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
          proc.once('close', () => resolve());
          proc.kill('SIGKILL');
        }),
    ),
  );
}

const protos = loadProtos();

export function counterClient(target: string, options?: grpc.ChannelOptions): CounterClient {
  return new protos.tally.v1.Counter(target, grpc.credentials.createInsecure(), options);
}

export function adminClient(target: string): AdminClient {
  return new protos.tally.v1.Admin(target, grpc.credentials.createInsecure());
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls probe until it returns non-null (a failed probe counts as null), at most timeoutMs. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | null>,
  timeoutMs = 30_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > end) throw new Error(`test: timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Admin.Status over gRPC. */
export function nodeStatus(target: string): Promise<StatusResponse__Output> {
  const client = adminClient(target);
  return new Promise((resolve, reject) =>
    client.status({}, { deadline: Date.now() + 5000 }, (err, res) => {
      client.close();
      if (err !== null || res === undefined) reject(err ?? new Error('test: empty status'));
      else resolve(res);
    }),
  );
}

/** The last ID handed out in `namespace` on the node at target (0 if none), from Admin.Status. */
export async function lastIdOf(target: string, namespace: string): Promise<number> {
  const status = await nodeStatus(target);
  return Number(status.namespaces.find((ns) => ns.name === namespace)?.lastId ?? 0);
}

export function allocate(
  client: CounterClient,
  namespace: string,
  count: number,
): Promise<AllocateResponse__Output> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    client.allocate({ namespace, count }, { deadline }, (err, res) => {
      if (err !== null || res === undefined) reject(err ?? new Error('test: empty response'));
      else resolve(res);
    });
  });
}

/** The status code an allocation fails with (or 0 if it succeeds). */
export async function allocateCode(
  client: CounterClient,
  namespace: string,
  count: number,
): Promise<number> {
  try {
    await allocate(client, namespace, count);
    return grpc.status.OK;
  } catch (err) {
    return (err as grpc.ServiceError).code;
  }
}

export interface StreamOutcome {
  responses: AllocateResponse__Output[];
  status: grpc.StatusObject;
}

/** Writes every request on one AllocateStream, half-closes, collects until the status. */
export function allocateStream(
  client: CounterClient,
  requests: AllocateRequest[],
): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    const call = client.allocateStream();
    const responses: AllocateResponse__Output[] = [];
    let status: grpc.StatusObject | undefined;
    let readDone = false;
    const settle = (): void => {
      if (status !== undefined && readDone) resolve({ responses, status });
    };
    call.on('data', (r: AllocateResponse__Output) => responses.push(r));
    // A failed call ends with 'error' instead of 'end'; its code arrives as 'status' too.
    call.on('error', () => ((readDone = true), settle()));
    call.on('end', () => ((readDone = true), settle()));
    call.on('status', (s: grpc.StatusObject) => ((status = s), settle()));
    for (const req of requests) call.write(req);
    call.end();
  });
}

export async function fetchText(
  url: string,
): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url);
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    body: await res.text(),
  };
}

/** Waits until the node's Status says `serving` (a primary: its standby accepted the epoch). */
export function untilServing(node: { target: string }): Promise<StatusResponse__Output> {
  return until(`${node.target} serving`, async () => {
    const s = await nodeStatus(node.target);
    return s.state === 'serving' ? s : null;
  });
}

/** `tally promote --target … --epoch …` (manual failover), run to completion. */
export function promote(target: string, epoch: string, extra: string[] = []): Promise<CliRun> {
  return runCli(['promote', '--target', target, '--epoch', epoch, ...extra]);
}

export function startStandby(dataDir: string, extra: string[] = []): Promise<Server> {
  return startServe(dataDir, ['--role', 'standby', ...extra], { id: 'standby' });
}

export function startPrimary(dataDir: string, standbyTarget: string): Promise<Server> {
  return startServe(dataDir, ['--role', 'primary', '--standby', standbyTarget], { id: 'primary' });
}

export interface Pair {
  standby: Server;
  primary: Server;
  standbyDir: string;
  primaryDir: string;
}

/** A standby, then a primary replicating to it, each on its own temp dir; once it serves. */
export async function startPair(): Promise<Pair> {
  const standbyDir = path.join(await tempDir('tally-standby-'), 'data');
  const primaryDir = path.join(await tempDir('tally-primary-'), 'data');
  const standby = await startStandby(standbyDir);
  const primary = await startPrimary(primaryDir, standby.target);
  await untilServing(primary);
  return { standby, primary, standbyDir, primaryDir };
}

/** Waits until the standby holds the primary's whole log and no longer counts as catching up. */
export function standbyCaughtUp(pair: Pair): Promise<StatusResponse__Output> {
  return until('standby caught up', async () => {
    const p = await nodeStatus(pair.primary.target);
    const s = await nodeStatus(pair.standby.target);
    const caughtUp = s.lastIndex === p.lastIndex && s.replication?.catchingUp === false;
    return caughtUp && s.replication?.state === 'connected' ? s : null;
  });
}

/** SIGKILLs one node by its handle and waits for it to exit. */
export async function stop(node: Server): Promise<void> {
  node.proc.kill('SIGKILL');
  await node.exited;
}
