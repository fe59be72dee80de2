/**
 * The `tally` command against a replicated pair and a controller cluster (real processes on
 * 127.0.0.1): following the primary, the checkpoint of an idle standby, the cluster status,
 * and the messages for an address of the wrong kind.
 */
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanUpClusterTest, kill, startCluster, untilPrimary } from './cluster-process';
import {
  assertBuilt,
  nodeStatus,
  runCli,
  standbyCaughtUp,
  startPair,
  until,
} from './serve-process';

beforeAll(assertBuilt);
afterEach((ctx) => cleanUpClusterTest(ctx.task.result?.state === 'fail'));

/** The IDs `tally alloc` printed, one per line. */
function ids(stdout: string): number[] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => Number(line));
}

/** Runs the CLI and measures how long the process took to exit. */
async function timedCli(
  args: string[],
): Promise<Awaited<ReturnType<typeof runCli>> & { ms: number }> {
  const started = Date.now();
  const run = await runCli(args);
  return { ...run, ms: Date.now() - started };
}

describe('tally alloc follows the primary', () => {
  it('with several --target (repeated or comma-separated, standby first) and with --controller, before and after a failover; it exits without waiting for its deadline', async () => {
    const cl = await startCluster();
    const a = cl.nodes.a.address;
    const b = cl.nodes.b.address;
    const deadline = ['--deadline-ms', '30000'];
    const seen: number[] = [];
    for (const targets of [
      ['--target', b, '--target', a],
      ['--target', `${b},${a}`],
    ]) {
      const run = await timedCli([
        'alloc',
        ...targets,
        '--namespace',
        'f',
        '--count',
        '2',
        ...deadline,
      ]);
      expect(run.code, run.stderr).toBe(0);
      expect(ids(run.stdout)).toHaveLength(2);
      expect(run.ms).toBeLessThan(30_000);
      seen.push(...ids(run.stdout));
    }
    const viaController = await timedCli([
      'alloc',
      '--controller',
      cl.controller,
      '--namespace',
      'f',
      '--json',
      ...deadline,
    ]);
    expect(viaController.code, viaController.stderr).toBe(0);
    const doc = JSON.parse(viaController.stdout) as { first: number; count: number; epoch: number };
    expect(doc).toMatchObject({ namespace: 'f', count: 1, epoch: 1 });
    expect(viaController.ms).toBeLessThan(30_000);
    seen.push(doc.first);

    await kill(cl.nodes.a.child, 'SIGKILL');
    // Right after the kill: the controller still names a, then b once it is promoted.
    const after = await timedCli([
      'alloc',
      '--controller',
      cl.controller,
      '--namespace',
      'f',
      '--count',
      '3',
      ...deadline,
    ]);
    expect(after.code, after.stderr).toBe(0);
    expect(Math.min(...ids(after.stdout))).toBeGreaterThan(Math.max(...seen));
    expect(after.ms).toBeLessThan(30_000);
    await untilPrimary(cl, 'b');
    const listed = await timedCli([
      'alloc',
      '--target',
      `${a},${b}`,
      '--namespace',
      'f',
      ...deadline,
    ]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(ids(listed.stdout)[0]).toBeGreaterThan(Math.max(...ids(after.stdout)));
  });

  it('a node given as --controller, and the controller given as --target, are named as such (exit 1)', async () => {
    const cl = await startCluster();
    const a = cl.nodes.a.address;
    for (const args of [
      ['status', '--controller', a],
      ['alloc', '--controller', a, '--namespace', 'x'],
      ['promote', '--controller', a, '--node', 'b', '--force', '--skip-ahead', '1000'],
    ]) {
      const run = await runCli(args);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toMatch(
        new RegExp(
          `^tally: .*${a} is a Tally node \\(a, primary\\), not the controller: give the controller's address`,
        ),
      );
    }
    for (const args of [['status'], ['alloc', '--namespace', 'x'], ['checkpoint']]) {
      const run = await runCli([...args, '--target', cl.controller]);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toMatch(
        new RegExp(
          `^tally: .*${cl.controller} is the Tally controller, not a node: give a node's address`,
        ),
      );
    }
    // Nothing was allocated or promoted by the refused commands.
    expect((await nodeStatus(a)).namespaces).toEqual([]);
    expect((await cl.config()).primary.id).toBe('a');
  });

  it('wal verify on the controller directory says it holds no WAL (a controller directory)', async () => {
    const cl = await startCluster();
    const dir = path.join(cl.dir, 'controller');
    const run = await runCli(['wal', 'verify', '--data-dir', dir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `tally: wal: ${dir} holds no Tally WAL (it looks like a controller's directory: cluster.json)\n`,
    );
  });
});

describe('tally status --controller', () => {
  it("labels the configuration's epoch (its last promotion) apart from the epoch the nodes are in, and gives every epoch and index as a JSON number", async () => {
    const cl = await startCluster();
    // The configuration was created at epoch 0; a, placed as primary, began epoch 1 itself.
    const table = await runCli(['status', '--controller', cl.controller]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(
      /^epoch +1 \(primary a\); configuration: epoch 0 \(its last promotion/m,
    );
    expect(table.stdout).not.toMatch(/^cluster .*epoch/m);
    const json = await runCli(['status', '--controller', cl.controller, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as {
      epoch: { current: number | null; primary: string; configured: number };
      config: Record<string, unknown>;
      nodes: Array<{
        id: string;
        status: Record<string, unknown> & { replication: Record<string, unknown> };
      }>;
    };
    expect(doc.epoch).toEqual({ current: 1, primary: 'a', configured: 0 });
    expect(doc.config).not.toHaveProperty('epochSeen');
    for (const node of doc.nodes) {
      for (const field of [
        'epoch',
        'lastIndex',
        'lastEpoch',
        'acknowledgedIndex',
        'checkpointIndex',
      ]) {
        expect(typeof node.status[field], `${node.id}.${field}`).toBe('number');
      }
      expect(typeof node.status.replication.ackIndex).toBe('number');
      expect(node.status.epoch).toBe(1);
    }
  });
});

describe('tally checkpoint on a standby', () => {
  it('an idle standby schedules its snapshot (exit 0) and writes it at the next record from the primary', async () => {
    const pair = await startPair();
    const alloc = await runCli([
      'alloc',
      '--target',
      pair.primary.target,
      '--namespace',
      'c',
      '--count',
      '3',
    ]);
    expect(alloc.code, alloc.stderr).toBe(0);
    const caughtUp = await standbyCaughtUp(pair);
    const index = Number(caughtUp.lastIndex);
    const run = await runCli(['checkpoint', '--target', pair.standby.target]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(
        `^checkpoint: scheduled on standby standby at index ${index} \\(written when the primary's next record confirms that index acknowledged; acknowledged up to \\d+ so far\\)\\n$`,
      ),
    );
    const json = await runCli(['checkpoint', '--target', pair.standby.target, '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ index, scheduled: true, segmentsRemoved: 0 });
    expect(Number((await nodeStatus(pair.standby.target)).checkpointIndex)).toBe(0);
    const next = await runCli(['alloc', '--target', pair.primary.target, '--namespace', 'c']);
    expect(next.code, next.stderr).toBe(0);
    const written = await until('standby checkpoint written', async () => {
      const s = await nodeStatus(pair.standby.target);
      return Number(s.checkpointIndex) > 0 ? s : null;
    });
    expect(Number(written.checkpointIndex)).toBe(index);
    // The primary (acknowledged everything it wrote) checkpoints at once, as before.
    const primary = await runCli(['checkpoint', '--target', pair.primary.target]);
    expect(primary.code, primary.stderr).toBe(0);
    expect(primary.stdout).toMatch(/^checkpoint at index \d+: \d+ segments? removed/);
  });
});
