/**
 * The `tally` command as users and scripts run it: dist/cli/main.js child processes, real
 * servers on 127.0.0.1 port 0, exit codes and output formats.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  assertBuilt,
  killChildren,
  removeTempDirs,
  runCli,
  type Server,
  startServe,
  tempDir,
} from './serve-process';

const anyPorts = ['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'];

interface DumpedRecord {
  file: string;
  offset: number;
  type: string;
  index: number;
  namespace?: string;
  first?: number;
  count?: number;
}

async function dumpJson(dataDir: string): Promise<DumpedRecord[]> {
  const run = await runCli(['wal', 'dump', '--data-dir', dataDir, '--json']);
  expect(run.code).toBe(0);
  return run.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as DumpedRecord);
}

/** A data dir holding `allocations` allocate records, left as a SIGKILL leaves it. */
async function killedDataDir(allocations: number): Promise<string> {
  const dataDir = path.join(await tempDir(), 'data');
  const server = await startServe(dataDir);
  for (let i = 0; i < allocations; i++) {
    const run = await runCli([
      'alloc',
      '--target',
      server.target,
      '--namespace',
      'w',
      '--count',
      '2',
    ]);
    expect(run.code).toBe(0);
  }
  server.proc.kill('SIGKILL');
  await server.exited;
  return dataDir;
}

function patchFile(file: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

beforeAll(() => assertBuilt());
afterAll(async () => {
  await killChildren();
  await removeTempDirs();
});

describe('command-line errors', () => {
  it('an unknown flag exits 2 and names the flag', async () => {
    const dataDir = path.join(await tempDir(), 'data');
    const run = await runCli([
      'serve',
      '--id',
      'n1',
      '--data-dir',
      dataDir,
      '--bogus',
      ...anyPorts,
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^tally: unknown option '--bogus'/);
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('a mistyped flag is reported as unknown with the near name, before the required flag it was meant to be', async () => {
    const dataDir = path.join(await tempDir(), 'data');
    const run = await runCli(['serve', '--idd', 'a', '--data-dir', dataDir, ...anyPorts]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^tally: unknown option '--idd'\n\(Did you mean --id\?\)/);
    expect(run.stderr).not.toContain('required option');
    const wal = await runCli(['wal', 'verify', '--data-dirr', dataDir]);
    expect(wal.code).toBe(2);
    expect(wal.stderr).toMatch(
      /^tally: unknown option '--data-dirr'\n\(Did you mean --data-dir\?\)/,
    );
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('a missing required flag exits 2 and names the flag', async () => {
    const run = await runCli(['serve', '--data-dir', '/nonexistent', ...anyPorts]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^tally: required option '--id <id>' not specified/);
  });

  it.each([
    [['alloc', '--namespace', 'a', '--count', 'many']],
    [['alloc', '--namespace', 'a', '--count', '-1']],
    [['serve', '--id', 'n1', '--data-dir', '/nonexistent', '--listen', 'localhost']],
    [['serve', '--id', 'n1', '--data-dir', '/nonexistent', '--engine', 'sqlite']],
    [['frobnicate']],
  ])('a malformed command line %j exits 2', async (args) => {
    const run = await runCli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^tally: /);
  });

  it.each(['abc', '0', '10001', '-1'])(
    'alloc --count %s exits 2 naming the real range 1..10000, before any RPC',
    async (count) => {
      const run = await runCli([
        'alloc',
        '--target',
        '127.0.0.1:1',
        '--namespace',
        'a',
        '--count',
        count,
      ]);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/^tally: .*--count.*expected an integer 1\.\.10000/);
      expect(run.stderr).not.toContain('UNAVAILABLE');
    },
  );

  it('a bad TALLY_* env value exits 2 and names the variable', async () => {
    const run = await runCli(['serve', '--id', 'n1', '--data-dir', '/nonexistent', ...anyPorts], {
      TALLY_SEGMENT_SIZE_BYTES: 'big',
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('TALLY_SEGMENT_SIZE_BYTES');
  });

  it('--help exits 0', async () => {
    const run = await runCli(['alloc', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('--namespace');
  });
});

describe('serve configuration', () => {
  afterEach(async () => {
    await killChildren();
  });

  it('takes settings from TALLY_* env variables, and a flag wins over its env variable', async () => {
    const dataDir = path.join(await tempDir(), 'from-env');
    const server = await startServe(dataDir, ['--id', 'from-flag'], {
      env: { TALLY_ID: 'from-env', TALLY_DATA_DIR: dataDir },
    });
    const run = await runCli(['status', '--target', server.target, '--json']);
    expect(run.code).toBe(0);
    const status = JSON.parse(run.stdout) as { nodeId: string; dataDir: string };
    expect(status.nodeId).toBe('from-flag');
    expect(status.dataDir).toBe(dataDir);
  });

  it('--engine baseline serves allocations from the checkpoint-per-write engine', async () => {
    const server = await startServe(path.join(await tempDir(), 'data'), ['--engine', 'baseline']);
    const run = await runCli([
      'alloc',
      '--target',
      server.target,
      '--namespace',
      'b',
      '--count',
      '2',
    ]);
    expect(run).toMatchObject({ code: 0, stdout: '1\n2\n' });
    server.proc.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
  });

  it('SIGINT stops the server gracefully with exit 0', async () => {
    const server = await startServe(path.join(await tempDir(), 'data'));
    server.proc.kill('SIGINT');
    expect((await server.exited).code).toBe(0);
  });
});

describe('alloc, status, checkpoint against a running node', () => {
  let server: Server;

  beforeAll(async () => {
    server = await startServe(path.join(await tempDir(), 'data'));
  });

  it('alloc prints one ID per line, continuing where the last allocation ended', async () => {
    const first = await runCli([
      'alloc',
      '--target',
      server.target,
      '--namespace',
      'cli',
      '--count',
      '3',
    ]);
    expect(first).toMatchObject({ code: 0, stdout: '1\n2\n3\n' });
    const next = await runCli(['alloc', '--target', server.target, '--namespace', 'cli']);
    expect(next).toMatchObject({ code: 0, stdout: '4\n' });
  });

  it('alloc --json prints one object with first, last and count', async () => {
    const run = await runCli([
      'alloc',
      '--target',
      server.target,
      '--namespace',
      'cli-json',
      '--count',
      '5',
      '--json',
    ]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      namespace: 'cli-json',
      first: 1,
      last: 5,
      count: 5,
    });
  });

  it('alloc exits 1 with the gRPC status name when the server rejects the request', async () => {
    const run = await runCli(['alloc', '--target', server.target, '--namespace', 'Bad!']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^tally: INVALID_ARGUMENT: /);
  });

  it('alloc exits 1 with UNAVAILABLE when nothing listens at the target', async () => {
    const dead = await runCli([
      'alloc',
      '--target',
      '127.0.0.1:1',
      '--namespace',
      'a',
      '--deadline-ms',
      '2000',
    ]);
    expect(dead.code).toBe(1);
    expect(dead.stderr).toMatch(/^tally: (UNAVAILABLE|DEADLINE_EXCEEDED): /);
  });

  it('status shows the node and its namespaces as a table and as JSON', async () => {
    await runCli(['alloc', '--target', server.target, '--namespace', 'status-ns', '--count', '7']);
    const table = await runCli(['status', '--target', server.target]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^node +n1$/m);
    expect(table.stdout).toMatch(/^state +serving$/m);
    expect(table.stdout).toMatch(/^status-ns +7$/m);
    const json = await runCli(['status', '--target', server.target, '--json']);
    const status = JSON.parse(json.stdout) as {
      role: string;
      namespaces: unknown[];
      version: string;
    };
    expect(status.role).toBe('standalone');
    expect(status.namespaces).toContainEqual({ name: 'status-ns', lastId: 7 });
    expect(status.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('status --json gives every epoch, index, ID and size as a JSON number; the table says 1 segment', async () => {
    await runCli(['alloc', '--target', server.target, '--namespace', 'numbers', '--count', '3']);
    const json = await runCli(['status', '--target', server.target, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const status = JSON.parse(json.stdout) as Record<string, unknown>;
    for (const field of [
      'epoch',
      'lastIndex',
      'lastEpoch',
      'acknowledgedIndex',
      'acknowledgedEpoch',
      'checkpointIndex',
      'checkpointUnixMs',
      'walBytes',
      'walSegments',
      'writeStallMs',
      'idFloor',
    ]) {
      expect(typeof status[field], field).toBe('number');
    }
    expect(status.lastIndex).toBeGreaterThan(0);
    expect(status.namespaces).toContainEqual({ name: 'numbers', lastId: 3 });
    expect(status.walSegments).toBe(1);
    const table = await runCli(['status', '--target', server.target]);
    expect(table.stdout).toMatch(/^wal +1 segment, \d+ bytes$/m);
  });

  it.each([['alloc', '--namespace', 'a'], ['status'], ['checkpoint']])(
    '%s against the metrics port says it is not a Tally gRPC port (exit 1)',
    async (...args) => {
      const target = `127.0.0.1:${server.metricsPort}`;
      const run = await runCli([...args, '--target', target, '--deadline-ms', '3000']);
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(
        `tally: ${target} is not a Tally gRPC port (it answered HTTP/1: the metrics port?)\n`,
      );
    },
  );

  it('checkpoint writes a snapshot that status then reports', async () => {
    await runCli(['alloc', '--target', server.target, '--namespace', 'ckpt']);
    const run = await runCli(['checkpoint', '--target', server.target]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^checkpoint at index [1-9]\d*: \d+ segments? removed/);
    const json = await runCli(['status', '--target', server.target, '--json']);
    const status = JSON.parse(json.stdout) as { checkpointIndex: number; lastIndex: number };
    expect(status.checkpointIndex).toBeGreaterThan(0);
    expect(status.checkpointIndex).toBeLessThanOrEqual(status.lastIndex);
    const again = await runCli(['checkpoint', '--target', server.target, '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({
      index: status.lastIndex,
      segmentsRemoved: expect.any(Number) as number,
      durationUs: expect.any(Number) as number,
    });
  });
});

describe('wal verify and wal dump (offline)', () => {
  afterEach(async () => {
    await killChildren();
  });

  it('verify exits 0 on a clean dir and dump lists every allocation in order', async () => {
    const dataDir = await killedDataDir(4);
    const verify = await runCli(['wal', 'verify', '--data-dir', dataDir]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^wal ok: 1 segment, 5 records/);
    const allocations = (await dumpJson(dataDir)).filter((r) => r.type === 'allocate');
    expect(allocations.map((r) => [r.namespace, r.first, r.count])).toEqual([
      ['w', 1, 2],
      ['w', 3, 2],
      ['w', 5, 2],
      ['w', 7, 2],
    ]);
    const text = await runCli(['wal', 'dump', '--data-dir', dataDir]);
    expect(text.stdout).toMatch(/\.wal@\d+ allocate epoch=1 index=5 namespace=w first=7 count=2$/m);
  });

  it('verify exits 1 naming the file and offset of a damaged record in the middle', async () => {
    const dataDir = await killedDataDir(4);
    const records = await dumpJson(dataDir);
    const victim = records[2] as DumpedRecord;
    patchFile(victim.file, victim.offset + 2, Buffer.from([0x5a]));
    const verify = await runCli(['wal', 'verify', '--data-dir', dataDir]);
    expect(verify.code).toBe(1);
    expect(verify.stderr).toContain(
      `tally: wal: corrupt record in ${victim.file} at offset ${victim.offset}`,
    );
    const dump = await runCli(['wal', 'dump', '--data-dir', dataDir]);
    expect(dump.code).toBe(1);
    expect(dump.stdout.trim().split('\n')).toHaveLength(2);
  });

  it('verify exits 0 with a note for a torn record at the tail (a crash mid-write)', async () => {
    const dataDir = await killedDataDir(3);
    const last = (await dumpJson(dataDir)).at(-1) as DumpedRecord;
    // Zero everything after the first bytes of the last record, as a cut-short write leaves it.
    patchFile(last.file, last.offset + 8, Buffer.alloc(4096));
    const verify = await runCli(['wal', 'verify', '--data-dir', dataDir]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain(
      `note: torn record at the tail of ${last.file} at offset ${last.offset}`,
    );
  });

  it('verify exits 1 saying what a directory without a WAL is: a controller directory, an empty one, a foreign one', async () => {
    const controllerDir = await tempDir('tally-ctl-dir-');
    fs.writeFileSync(path.join(controllerDir, 'cluster.json'), '{}');
    fs.writeFileSync(path.join(controllerDir, 'LOCK'), '');
    const empty = await tempDir('tally-empty-');
    const foreign = await tempDir('tally-foreign-');
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'hello');
    const cases: Array<[string, string]> = [
      [controllerDir, "it looks like a controller's directory: cluster.json"],
      [empty, 'it is empty'],
      [foreign, "found 'notes.txt'; a node's data dir holds meta and wal/"],
    ];
    for (const [dir, why] of cases) {
      for (const command of ['verify', 'dump']) {
        const run = await runCli(['wal', command, '--data-dir', dir]);
        expect(run.code, run.stderr).toBe(1);
        expect(run.stderr).toBe(`tally: wal: ${dir} holds no Tally WAL (${why})\n`);
      }
    }
  });

  it("verify and dump refuse a running node's directory, naming its pid; --allow-running reads it with a warning", async () => {
    const dataDir = path.join(await tempDir(), 'data');
    const server = await startServe(dataDir);
    const alloc = await runCli([
      'alloc',
      '--target',
      server.target,
      '--namespace',
      'w',
      '--count',
      '2',
    ]);
    expect(alloc.code).toBe(0);
    const pid = server.proc.pid as number;
    for (const command of ['verify', 'dump']) {
      const run = await runCli(['wal', command, '--data-dir', dataDir]);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(
        new RegExp(`^tally: wal: data dir ${dataDir} is in use by a running node \\(pid ${pid}\\)`),
      );
      expect(run.stderr).toContain('--allow-running');
    }
    const live = await runCli(['wal', 'verify', '--data-dir', dataDir, '--allow-running']);
    expect(live.code, live.stderr).toBe(0);
    expect(live.stdout).toMatch(/^wal ok: 1 segment, 2 records/);
    expect(live.stderr).toMatch(
      new RegExp(
        `^tally: warning: data dir ${dataDir} is in use by a running node \\(pid ${pid}\\)`,
      ),
    );
    const dump = await runCli(['wal', 'dump', '--data-dir', dataDir, '--allow-running']);
    expect(dump.code, dump.stderr).toBe(0);
    expect(dump.stdout).toMatch(/ allocate epoch=1 index=2 namespace=w first=1 count=2$/m);
    server.proc.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
    const stopped = await runCli(['wal', 'verify', '--data-dir', dataDir]);
    expect(stopped).toMatchObject({ code: 0, stderr: '' });
  });

  it('verify exits 1 when the data dir does not exist', async () => {
    const run = await runCli(['wal', 'verify', '--data-dir', path.join(await tempDir(), 'nope')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^tally: wal: data dir .*nope does not exist/);
  });
});
