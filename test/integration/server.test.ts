/**
 * A real `tally serve` child process (dist/), real gRPC, real fsync. Each server has its own
 * temp data dir and listens on 127.0.0.1 port 0.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AllocateResponse__Output } from '../../src/generated/tally/v1/AllocateResponse';
import type { CounterClient } from '../../src/generated/tally/v1/Counter';
import {
  allocate,
  allocateCode,
  allocateStream,
  assertBuilt,
  counterClient,
  fetchText,
  killChildren,
  lastIdOf,
  removeTempDirs,
  repoRoot,
  runCli,
  serveArgs,
  type Server,
  startServe,
  tempDir,
} from './serve-process';

const { status: Status } = grpc;

/** Sends raw bytes as an Allocate request, bypassing the client's protobuf encoder. */
function rawAllocate(target: string, bytes: Buffer): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const identity = (b: Buffer): Buffer => b;
  return new Promise((resolve) => {
    const options = { deadline: Date.now() + 10_000 };
    client.makeUnaryRequest(
      '/tally.v1.Counter/Allocate',
      identity,
      identity,
      bytes,
      options,
      (err) => {
        client.close();
        resolve(err);
      },
    );
  });
}

/** IDs acknowledged to clients, as [first, last] ranges; asserts no two overlap. */
function expectDisjoint(ranges: Array<[number, number]>): void {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1] as [number, number];
    const cur = sorted[i] as [number, number];
    expect(cur[0]).toBeGreaterThan(prev[1]);
  }
}

function rangeOf(r: AllocateResponse__Output): [number, number] {
  const first = Number(r.first);
  return [first, first + r.count - 1];
}

beforeAll(() => assertBuilt());
afterAll(async () => {
  await killChildren();
  await removeTempDirs();
});

describe('one tally serve process', () => {
  let server: Server;
  let client: CounterClient;

  beforeAll(async () => {
    server = await startServe(path.join(await tempDir(), 'data'));
    client = counterClient(server.target);
  });
  afterAll(() => client.close());

  it('unary Allocate hands out consecutive, increasing IDs starting at 1', async () => {
    const a = await allocate(client, 'orders', 3);
    const b = await allocate(client, 'orders', 2);
    const other = await allocate(client, 'users', 1);
    expect(a).toMatchObject({ first: '1', count: 3, correlationId: '0' });
    expect(b).toMatchObject({ first: '4', count: 2 });
    expect(Number(b.index)).toBeGreaterThan(Number(a.index));
    expect(Number(a.epoch)).toBeGreaterThanOrEqual(1);
    expect(other.first).toBe('1');
  });

  it('AllocateStream answers each request with its correlation id; a bad one does not end the stream', async () => {
    const requests = Array.from({ length: 300 }, (_, i) => ({
      namespace: 'stream',
      count: i % 100 === 50 ? 0 : 2,
      correlationId: String(i + 1),
    }));
    const { responses, status } = await allocateStream(client, requests);
    expect(status.code).toBe(Status.OK);
    const ids = responses.map((r) => Number(r.correlationId)).sort((x, y) => x - y);
    expect(ids).toEqual(requests.map((r) => Number(r.correlationId)));
    const failed = responses.filter((r) => r.error !== null);
    expect(failed.map((r) => r.correlationId).sort()).toEqual(['151', '251', '51']);
    for (const r of failed) expect(r.error?.code).toBe(Status.INVALID_ARGUMENT);
    const ok = responses.filter((r) => r.error === null);
    expect(ok.every((r) => r.count === 2)).toBe(true);
    expectDisjoint(ok.map(rangeOf));
  });

  it.each([
    ['count 0', 'bad', 0],
    ['count over the maximum', 'bad', 10_001],
    ['an empty namespace', '', 1],
    ['a 65-character namespace', 'a'.repeat(65), 1],
    ['an uppercase namespace', 'Orders', 1],
    ['a namespace with a slash', 'ns/1', 1],
    ['a namespace with a space', 'a b', 1],
    ['a non-ASCII namespace', 'café', 1],
  ])('rejects %s with INVALID_ARGUMENT', async (_what, namespace, count) => {
    expect(await allocateCode(client, namespace, count)).toBe(Status.INVALID_ARGUMENT);
  });

  it('accepts the limits themselves: a 64-character namespace and count 10000', async () => {
    const res = await allocate(client, 'a'.repeat(64), 10_000);
    expect(res).toMatchObject({ first: '1', count: 10_000 });
  });

  it('answers malformed protobuf bytes with INVALID_ARGUMENT and keeps serving others', async () => {
    const badWireType = Buffer.from([0x0f, 0xff, 0xff, 0xff]);
    const truncatedString = Buffer.from([0x0a, 0x64, 0x61, 0x62]);
    const details: string[] = [];
    for (const bytes of [badWireType, truncatedString]) {
      const err = await rawAllocate(server.target, bytes);
      expect(err?.code).toBe(Status.INVALID_ARGUMENT);
      details.push(err?.details ?? '');
    }
    // Bytes that do not decode at all are named as such (the others fail validation).
    expect(details).toContain('server: request is not a valid tally.v1.AllocateRequest');
    const before = await allocate(client, 'after-garbage', 1);
    expect(await allocate(client, 'after-garbage', 1)).toMatchObject({
      first: String(Number(before.first) + 1),
    });
  });

  it('refuses a request larger than the 64 KiB message limit with RESOURCE_EXHAUSTED', async () => {
    expect(await allocateCode(client, 'x'.repeat(70_000), 1)).toBe(Status.RESOURCE_EXHAUSTED);
    expect((await allocate(client, 'after-big', 1)).first).toBe('1');
  });

  it('survives a stream client that cancels mid-flight, and keeps serving', async () => {
    const call = client.allocateStream();
    const statusSeen = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    call.on('error', () => undefined);
    call.once('data', () => call.cancel());
    for (let i = 1; i <= 2000; i++) {
      call.write({ namespace: 'cancelled', count: 1, correlationId: String(i) });
    }
    expect((await statusSeen).code).toBe(Status.CANCELLED);
    const after = await allocate(client, 'cancelled', 1);
    // Everything the node allocated before stays below what it hands out next.
    expect(Number(after.first)).toBe(await lastIdOf(server.target, 'cancelled'));
    expect(server.proc.exitCode).toBeNull();
  });

  it('survives a stream client process that dies mid-flight, and keeps serving', async () => {
    const script = `
      const grpc = require('@grpc/grpc-js');
      const loader = require('@grpc/proto-loader');
      const def = loader.loadSync('tally/v1/counter.proto', { includeDirs: ['proto'], longs: String });
      const { tally } = grpc.loadPackageDefinition(def);
      const client = new tally.v1.Counter(process.argv[1], grpc.credentials.createInsecure());
      const call = client.allocateStream();
      call.on('data', () => process.exit(0));
      call.on('error', () => process.exit(3));
      for (let i = 1; i <= 2000; i++) call.write({ namespace: 'vanished', count: 1, correlationId: String(i) });
    `;
    const child = spawn(process.execPath, ['-e', script, server.target], { cwd: repoRoot });
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(killer);
    expect(code).toBe(0);
    const after = await allocate(client, 'vanished', 1);
    expect(Number(after.first)).toBeGreaterThan(1);
    expect(server.proc.exitCode).toBeNull();
    expect(server.stderr()).not.toMatch(/uncaught|unhandled|ERR_STREAM/i);
  });

  it('reports SERVING on grpc.health.v1 for the server and tally.v1.Counter', async () => {
    const def = protoLoader.loadSync(healthProtoPath, { enums: String });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    type CheckCallback = (err: grpc.ServiceError | null, res?: { status: string }) => void;
    const hc = new pkg.grpc.health.v1.Health(
      server.target,
      grpc.credentials.createInsecure(),
    ) as unknown as grpc.Client & { check(req: { service: string }, cb: CheckCallback): void };
    const check = (service: string): Promise<unknown> =>
      new Promise((resolve, reject) =>
        hc.check({ service }, (err, res) => (err ? reject(err) : resolve(res))),
      );
    expect(await check('')).toEqual({ status: 'SERVING' });
    expect(await check('tally.v1.Counter')).toEqual({ status: 'SERVING' });
    hc.close();
  });

  it('lists tally.v1.Counter and tally.v1.Admin through server reflection', async () => {
    const file = path.join(
      repoRoot,
      'node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto',
    );
    const def = protoLoader.loadSync(file, { keepCase: false, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    };
    const rc = new pkg.grpc.reflection.v1.ServerReflection(
      server.target,
      grpc.credentials.createInsecure(),
    ) as unknown as grpc.Client & {
      serverReflectionInfo(): grpc.ClientDuplexStream<object, unknown>;
    };
    const names = await new Promise<string[]>((resolve, reject) => {
      const call = rc.serverReflectionInfo();
      call.on('data', (res: { listServicesResponse?: { service: Array<{ name: string }> } }) =>
        resolve(res.listServicesResponse?.service.map((s) => s.name) ?? []),
      );
      call.on('error', reject);
      call.write({ listServices: '*' });
      call.end();
    });
    rc.close();
    expect(names).toEqual(expect.arrayContaining(['tally.v1.Counter', 'tally.v1.Admin']));
  });

  it('serves Prometheus metrics on /metrics and 404 elsewhere', async () => {
    await allocate(client, 'metrics', 5);
    const res = await fetchText(`http://127.0.0.1:${server.metricsPort}/metrics`);
    expect(res.status).toBe(200);
    expect(res.type).toContain('text/plain');
    expect(res.body).toMatch(/^tally_requests_total\{method="Allocate",code="OK"\} [1-9]/m);
    expect(res.body).toMatch(
      /^tally_requests_total\{method="Allocate",code="INVALID_ARGUMENT"\} [1-9]/m,
    );
    expect(res.body).toMatch(/^tally_ids_allocated_total [1-9]/m);
    expect(res.body).toContain('tally_request_duration_seconds_bucket{');
    expect(res.body).toContain('process_resident_memory_bytes');
    expect((await fetchText(`http://127.0.0.1:${server.metricsPort}/`)).status).toBe(404);
  });
});

describe('tally serve lifecycle', () => {
  afterEach(async () => {
    await killChildren();
  });

  it('SIGTERM: answers every request already taken, exits 0, and every allocation made was acknowledged', async () => {
    const dataDir = path.join(await tempDir(), 'data');
    const server = await startServe(dataDir);
    const client = counterClient(server.target);
    await allocate(client, 'warmup', 1);
    const unaries = Array.from({ length: 200 }, () =>
      allocate(client, 'term-unary', 1).then(
        (r) => ({ ok: r, code: Status.OK }),
        (e: grpc.ServiceError) => ({ ok: null, code: e.code }),
      ),
    );
    const call = client.allocateStream();
    const streamed: AllocateResponse__Output[] = [];
    const streamStatus = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    call.on('error', () => undefined);
    call.on('data', (r: AllocateResponse__Output) => {
      // The first answer means the server is busy with the rest: stop it now.
      if (streamed.push(r) === 1) server.proc.kill('SIGTERM');
    });
    for (let i = 1; i <= 1000; i++) {
      call.write({ namespace: 'term-stream', count: 1, correlationId: String(i) });
    }
    expect((await server.exited).code).toBe(0);
    const unaryOutcomes = await Promise.all(unaries);
    expect([Status.OK, Status.UNAVAILABLE]).toContain((await streamStatus).code);
    client.close();

    for (const o of unaryOutcomes) expect([Status.OK, Status.UNAVAILABLE]).toContain(o.code);
    for (const r of streamed) expect([null, Status.UNAVAILABLE]).toContain(r.error?.code ?? null);
    const unaryOk = unaryOutcomes.flatMap((o) => (o.ok ? [o.ok] : []));
    const streamOk = streamed.filter((r) => r.error === null);
    expect(streamOk.length).toBeGreaterThan(0);
    expectDisjoint(unaryOk.map(rangeOf));
    expectDisjoint(streamOk.map(rangeOf));

    // After a restart the node's counters equal what clients were told: no allocation was
    // made durable and then dropped unanswered at shutdown.
    const again = await startServe(dataDir);
    expect(await lastIdOf(again.target, 'term-unary')).toBe(unaryOk.length);
    expect(await lastIdOf(again.target, 'term-stream')).toBe(streamOk.length);
  });

  it('logs nothing per request at LOG_LEVEL=info (only start-up lines)', async () => {
    const server = await startServe(path.join(await tempDir(), 'data'), [], {
      env: { LOG_LEVEL: 'info' },
    });
    const client = counterClient(server.target);
    // The CLI logs its own "tally: serving" line just after printing the ports: wait for it.
    for (let i = 0; i < 100 && !server.stderr().includes('"module":"cli"'); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const startupLines = server.stderr().trim().split('\n').length;
    for (let i = 0; i < 300; i++) await allocate(client, 'quiet', 1);
    await allocateStream(
      client,
      Array.from({ length: 300 }, (_, i) => ({
        namespace: 'quiet',
        count: 1,
        correlationId: String(i),
      })),
    );
    client.close();
    expect(startupLines).toBe(3); // recovered, serving (node), serving (cli): info does reach stderr
    expect(server.stderr().trim().split('\n').length).toBe(startupLines);
  });

  it('a second serve on the same data dir fails clearly while the first keeps serving', async () => {
    const dataDir = path.join(await tempDir(), 'data');
    const first = await startServe(dataDir);
    const second = await runCli(serveArgs(dataDir));
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/^tally: .*locked by another running process/);
    expect(second.stdout).not.toContain('"serving"');
    const client = counterClient(first.target);
    expect((await allocate(client, 'still-here', 1)).first).toBe('1');
    client.close();
  });

  it('an unwritable data dir (path under a regular file) fails with one clear line', async () => {
    const file = path.join(await tempDir(), 'a-file');
    fs.writeFileSync(file, 'not a directory');
    const dataDir = path.join(file, 'data');
    const run = await runCli(serveArgs(dataDir));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^tally: .*a-file\/data.*ENOTDIR/);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a foreign data dir (not Tally, or another node) is refused', async () => {
    const notTally = await tempDir();
    fs.writeFileSync(path.join(notTally, 'notes.txt'), 'mine');
    const foreign = await runCli(serveArgs(notTally));
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toMatch(/^tally: .*not a Tally data dir/);
    expect(fs.readdirSync(notTally)).toEqual(['notes.txt']); // refused before touching it

    const dataDir = path.join(await tempDir(), 'data');
    const owner = await startServe(dataDir, [], { id: 'alpha' });
    owner.proc.kill('SIGTERM');
    expect((await owner.exited).code).toBe(0);
    const other = await runCli(serveArgs(dataDir, 'beta'));
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/^tally: .*belongs to node 'alpha'/);
  });

  it('a port already in use fails with a clear message and exit 1, before anything is written', async () => {
    const first = await startServe(path.join(await tempDir(), 'data'));
    const busyMetrics = `127.0.0.1:${first.metricsPort}`;
    for (const [listen, metrics, which] of [
      [first.target, '127.0.0.1:0', 'gRPC'],
      ['127.0.0.1:0', busyMetrics, 'metrics'],
    ] as const) {
      const dataDir = path.join(await tempDir(), 'data');
      const run = await runCli([
        'serve',
        '--id',
        'n2',
        '--data-dir',
        dataDir,
        '--listen',
        listen,
        '--metrics-listen',
        metrics,
      ]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        new RegExp(
          `^tally: serve: cannot listen on 127\\.0\\.0\\.1:\\d+ \\(${which}\\): the address is in use; nothing was written`,
        ),
      );
      // No recovery, no epoch-start record, no "serving": the data dir was never opened.
      expect(fs.existsSync(dataDir)).toBe(false);
      expect(run.stdout).not.toContain('serving');
    }
  });
});
