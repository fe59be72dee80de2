/**
 * Replication as operators meet it through the `tally` command: real `tally serve` child
 * processes (dist/) in the roles primary and standby on 127.0.0.1, their command-line and
 * start-up refusals, the standby's FAILED_PRECONDITION hint, `tally promote` and its refusals,
 * a primary whose "standby" is not a Tally node, a raw replication stream that breaks the
 * protocol, and `tally status` of a streaming pair.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AllocateResponse__Output } from '../../src/generated/tally/v1/AllocateResponse';
import type { ReplicateResponse__Output } from '../../src/generated/tally/v1/ReplicateResponse';
import type { StatusResponse__Output } from '../../src/generated/tally/v1/StatusResponse';
import { loadProtos } from '../../src/server/proto';
import { errorNameKey, primaryAddressKey } from '../../src/server/status';
import {
  allocateCode,
  assertBuilt,
  counterClient,
  freePort,
  killChildren,
  removeTempDirs,
  nodeStatus,
  promote,
  runCli,
  serveArgs,
  standbyCaughtUp,
  startPair,
  startPrimary,
  startServe,
  startStandby,
  stop,
  tempDir,
  until,
  untilServing,
} from './serve-process';

const { status: Status } = grpc;

/** In-process gRPC servers (the "not a Tally node" peer), stopped after each test. */
const plainServers: grpc.Server[] = [];

beforeAll(() => assertBuilt());
afterEach(async () => {
  for (const server of plainServers.splice(0)) server.forceShutdown();
  await killChildren();
});
afterAll(async () => {
  await killChildren();
  await removeTempDirs();
});

/** A StatusResponse as `tally status --json` prints it: 64-bit fields as JSON numbers. */
type StatusJson = Omit<
  StatusResponse__Output,
  'epoch' | 'lastIndex' | 'namespaces' | 'replication'
> & {
  epoch: number;
  lastIndex: number;
  namespaces: Array<{ name: string; lastId: number }>;
  replication: {
    state: string;
    peer: string;
    ackIndex: number;
    lagRecords: number;
    catchingUp: boolean;
  } | null;
};

/** `tally status --json`, parsed; fails the test if the command fails. */
async function cliStatus(target: string): Promise<StatusJson> {
  const run = await runCli(['status', '--target', target, '--json']);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as StatusJson;
}

interface AllocJson {
  namespace: string;
  first: number;
  last: number;
  count: number;
  epoch: number;
  index: number;
}

/** `tally alloc --json`, parsed; fails the test if the command fails. */
async function cliAlloc(target: string, namespace: string, count: number): Promise<AllocJson> {
  const run = await runCli([
    'alloc',
    '--target',
    target,
    '--namespace',
    namespace,
    '--count',
    String(count),
    '--json',
  ]);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as AllocJson;
}

describe('serve: role flags', () => {
  it.each([
    [
      '--role primary without --standby',
      ['--role', 'primary'],
      /^tally: serve: --role primary needs --standby HOST:PORT\n$/,
    ],
    [
      '--standby with --role standby',
      ['--role', 'standby', '--standby', '127.0.0.1:7401'],
      /^tally: serve: --standby is only for --role primary\n$/,
    ],
    [
      '--standby with --role standalone',
      ['--role', 'standalone', '--standby', '127.0.0.1:7401'],
      /^tally: serve: --standby is only for --role primary\n$/,
    ],
  ])('%s is a command-line error: exit 2, one tally: line, no data dir', async (_, args, want) => {
    const dataDir = path.join(await tempDir(), 'data');
    const run = await runCli([...serveArgs(dataDir, 'n1'), ...args]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(want);
    expect(run.stdout).toBe('');
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it("a standby's data dir started as primary or standalone is refused (exit 1, names tally promote) and stays a standby", async () => {
    const dataDir = path.join(await tempDir(), 'data');
    const first = await startStandby(dataDir);
    await stop(first);
    const elsewhere = `127.0.0.1:${await freePort()}`;
    for (const roleArgs of [
      ['--role', 'primary', '--standby', elsewhere],
      ['--role', 'standalone'],
    ]) {
      const run = await runCli([...serveArgs(dataDir, 'standby'), ...roleArgs]);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toMatch(/^tally: /);
      expect(run.stderr).toContain('holds a standby');
      expect(run.stderr).toContain('tally promote');
      expect(run.stdout).not.toContain('"serving"');
    }
    // The refusals changed nothing: the directory still starts as the same standby.
    const again = await startStandby(dataDir);
    const s = await cliStatus(again.target);
    expect(s).toMatchObject({ nodeId: 'standby', role: 'standby', state: 'serving', epoch: 0 });
  });
});

describe('a standby refuses allocations with the primary hint', () => {
  it('unary Allocate on a standby fails FAILED_PRECONDITION with tally-primary = the primary address in the trailers; tally alloc exits 1', async () => {
    const pair = await startPair();
    const client = counterClient(pair.standby.target);
    const outcome = await new Promise<{ err: grpc.ServiceError | null; trailers: grpc.Metadata }>(
      (resolve) => {
        let err: grpc.ServiceError | null | undefined;
        let trailers: grpc.Metadata | undefined;
        const settle = (): void => {
          if (err !== undefined && trailers !== undefined) resolve({ err, trailers });
        };
        const call = client.allocate(
          { namespace: 'hint', count: 1 },
          { deadline: Date.now() + 10_000 },
          (e: grpc.ServiceError | null, _res?: AllocateResponse__Output) => ((err = e), settle()),
        );
        call.on('status', (s: grpc.StatusObject) => ((trailers = s.metadata), settle()));
      },
    );
    client.close();
    expect(outcome.err?.code).toBe(Status.FAILED_PRECONDITION);
    expect(outcome.err?.details).toContain(pair.primary.target);
    expect(outcome.err?.metadata.get(primaryAddressKey)).toEqual([pair.primary.target]);
    expect(outcome.err?.metadata.get(errorNameKey)).toEqual(['NotPrimaryError']);
    expect(outcome.trailers.get(primaryAddressKey)).toEqual([pair.primary.target]);

    const run = await runCli([
      'alloc',
      '--target',
      pair.standby.target,
      '--namespace',
      'hint',
      '--count',
      '1',
    ]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^tally: FAILED_PRECONDITION: /);
    expect(run.stderr).toContain(pair.primary.target);
    // Nothing was allocated anywhere by the refused calls.
    expect((await cliStatus(pair.primary.target)).namespaces).toEqual([]);
  });
});

describe('tally promote', () => {
  it('--epoch 0 and --epoch abc are command-line errors (exit 2) before any RPC', async () => {
    // Nothing listens on the target: a parse error must come first.
    const target = `127.0.0.1:${await freePort()}`;
    for (const epoch of ['0', 'abc']) {
      const run = await promote(target, epoch);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(/^tally: .*--epoch/);
      expect(run.stderr).not.toContain('UNAVAILABLE');
    }
  });

  it('refuses FAILED_PRECONDITION (exit 1): an epoch not above the standby one, a primary, a standalone node; the refused nodes are unchanged', async () => {
    const pair = await startPair();
    // A restarted primary proposes the next epoch: the standby then holds epoch 2.
    await stop(pair.primary);
    pair.primary = await startPrimary(pair.primaryDir, pair.standby.target);
    await untilServing(pair.primary);
    const standbyBefore = await until('standby at epoch 2', async () => {
      const s = await nodeStatus(pair.standby.target);
      return s.epoch === '2' ? s : null;
    });
    for (const epoch of ['2', '1']) {
      const run = await promote(pair.standby.target, epoch);
      expect(run.code, `epoch ${epoch}`).toBe(1);
      expect(run.stderr).toMatch(/^tally: FAILED_PRECONDITION: /);
      expect(run.stderr).toContain(`promote to epoch ${epoch} refused`);
    }
    expect(await cliStatus(pair.standby.target)).toMatchObject({
      role: 'standby',
      state: 'serving',
      epoch: Number(standbyBefore.epoch),
      epochPrimary: 'primary',
    });

    const onPrimary = await promote(pair.primary.target, '99');
    expect(onPrimary.code).toBe(1);
    expect(onPrimary.stderr).toMatch(
      /^tally: FAILED_PRECONDITION: .*only a standby can be promoted/,
    );
    const primaryAfter = await cliStatus(pair.primary.target);
    expect(primaryAfter).toMatchObject({ role: 'primary', state: 'serving', epoch: 2 });
    expect((await cliAlloc(pair.primary.target, 'still', 1)).epoch).toBe(2);

    const standalone = await startServe(path.join(await tempDir(), 'data'), [], { id: 'solo' });
    const onStandalone = await promote(standalone.target, '99');
    expect(onStandalone.code).toBe(1);
    expect(onStandalone.stderr).toMatch(
      /^tally: FAILED_PRECONDITION: .*only a standby can be promoted/,
    );
    expect(await cliStatus(standalone.target)).toMatchObject({
      role: 'standalone',
      epoch: 1,
    });
  });

  it('a promoted standby serves alone in the new epoch as its own primary, continuing above the old primary IDs', async () => {
    const pair = await startPair();
    const a = await cliAlloc(pair.primary.target, 'ids', 5);
    const b = await cliAlloc(pair.primary.target, 'ids', 5);
    expect([a.first, b.last]).toEqual([1, 10]);
    const before = await standbyCaughtUp(pair);
    await stop(pair.primary);

    const epoch = Number(before.epoch) + 1;
    const run = await promote(pair.standby.target, String(epoch), ['--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ epoch, role: 'standalone' });

    const after = await cliStatus(pair.standby.target);
    expect(after).toMatchObject({
      nodeId: 'standby',
      role: 'standalone',
      state: 'serving',
      epoch,
      epochPrimary: 'standby',
    });
    expect(after.namespaces).toEqual([{ name: 'ids', lastId: 10 }]);
    const next = await cliAlloc(pair.standby.target, 'ids', 3);
    expect(next.first).toBeGreaterThan(b.last);
    expect(next.epoch).toBe(epoch);
    // A second promotion of the same node is refused: it is no longer a standby.
    const again = await promote(pair.standby.target, String(epoch + 1));
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^tally: FAILED_PRECONDITION: /);
  });
});

describe('a primary whose standby is not a Tally node', () => {
  it('stays starting: allocations UNAVAILABLE, replication not streaming, and it logs "not a Tally node"', async () => {
    const plain = new grpc.Server();
    new HealthImplementation({ '': 'SERVING' }).addToServer(plain);
    plainServers.push(plain);
    const port = await new Promise<number>((resolve, reject) =>
      plain.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err === null ? resolve(p) : reject(err),
      ),
    );
    const notTally = `127.0.0.1:${port}`;
    const primary = await startPrimary(path.join(await tempDir(), 'data'), notTally);

    const logLine = await until('a "not a Tally node" log line', () =>
      Promise.resolve(
        primary
          .stderr()
          .split('\n')
          .find((line) => line.includes('not a Tally node')) ?? null,
      ),
    );
    expect(logLine).toContain(notTally);
    expect((JSON.parse(logLine) as { level: number }).level).toBeGreaterThanOrEqual(40);

    const client = counterClient(primary.target);
    expect(await allocateCode(client, 'never', 1)).toBe(Status.UNAVAILABLE);
    client.close();
    const alloc = await runCli(['alloc', '--target', primary.target, '--namespace', 'never']);
    expect(alloc.code).toBe(1);
    expect(alloc.stderr).toMatch(/^tally: UNAVAILABLE: /);

    const s = await cliStatus(primary.target);
    expect(s).toMatchObject({ role: 'primary', state: 'starting', epoch: 0, namespaces: [] });
    expect(s.replication?.peer).toBe(notTally);
    expect(s.replication?.state).not.toBe('streaming');
    expect(primary.proc.exitCode).toBeNull();
  });
});

describe('the standby side of tally.v1.Replication', () => {
  it('an Append before Hello ends the stream INVALID_ARGUMENT; the standby keeps serving and still pairs', async () => {
    const standbyDir = path.join(await tempDir(), 'data');
    const standby = await startStandby(standbyDir);
    const { tally } = loadProtos();
    const client = new tally.v1.Replication(standby.target, grpc.credentials.createInsecure());
    const outcome = await new Promise<{
      status: grpc.StatusObject;
      responses: ReplicateResponse__Output[];
    }>((resolve) => {
      const call = client.Replicate({ deadline: Date.now() + 10_000 });
      const responses: ReplicateResponse__Output[] = [];
      call.on('data', (r: ReplicateResponse__Output) => responses.push(r));
      call.on('error', () => undefined); // the status carries the code
      call.on('status', (status: grpc.StatusObject) => resolve({ status, responses }));
      call.write({
        append: {
          epoch: 1,
          prevIndex: 0,
          prevEpoch: 0,
          recordCount: 1,
          records: Buffer.alloc(10),
          primaryLastIndex: 1,
          lastEpoch: 1,
        },
      });
    });
    client.close();
    expect(outcome.status.code).toBe(Status.INVALID_ARGUMENT);
    expect(outcome.status.details).toContain('the first message must be Hello');
    expect(outcome.status.metadata.get(errorNameKey)).toEqual(['ProtocolError']);
    expect(outcome.responses).toEqual([]);

    const s = await cliStatus(standby.target);
    expect(s).toMatchObject({ role: 'standby', state: 'serving', lastIndex: 0, epoch: 0 });
    expect(standby.proc.exitCode).toBeNull();
    // A real primary can still pair with it afterwards.
    const primary = await startPrimary(path.join(await tempDir(), 'data'), standby.target);
    await untilServing(primary);
    expect((await cliAlloc(primary.target, 'after', 2)).first).toBe(1);
  });
});

describe('tally status of a streaming pair', () => {
  it('primary: streaming to the standby (JSON and text rows); standby: connected, not catching up', async () => {
    const pair = await startPair();
    const alloc = await cliAlloc(pair.primary.target, 'st', 1);
    await standbyCaughtUp(pair);
    await until('primary streaming', async () => {
      const p = await nodeStatus(pair.primary.target);
      return p.replication?.state === 'streaming' ? p : null;
    });

    const p = await cliStatus(pair.primary.target);
    expect(p).toMatchObject({ role: 'primary', state: 'serving', epochPrimary: 'primary' });
    expect(p.replication).toMatchObject({
      state: 'streaming',
      peer: pair.standby.target,
      ackIndex: alloc.index,
      lagRecords: 0,
    });
    const s = await cliStatus(pair.standby.target);
    expect(s).toMatchObject({
      role: 'standby',
      state: 'serving',
      epoch: p.epoch,
      epochPrimary: 'primary',
      lastIndex: alloc.index,
    });
    expect(s.replication).toMatchObject({
      state: 'connected',
      catchingUp: false,
      peer: pair.primary.target,
    });

    const text = await runCli(['status', '--target', pair.primary.target]);
    expect(text.code, text.stderr).toBe(0);
    const standbyRow = new RegExp(
      `^standby +${pair.standby.target.replace(/\./g, '\\.')} \\(streaming\\)$`,
      'm',
    );
    expect(text.stdout).toMatch(standbyRow);
    expect(text.stdout).toMatch(new RegExp(`^ack index +${alloc.index}$`, 'm'));
    const standbyText = await runCli(['status', '--target', pair.standby.target]);
    expect(standbyText.code, standbyText.stderr).toBe(0);
    expect(standbyText.stdout).toMatch(/^primary +\S+ \(connected\)$/m);
    expect(standbyText.stdout).toContain(pair.primary.target);
  });
});
