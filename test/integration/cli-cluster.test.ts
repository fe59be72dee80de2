/**
 * The `tally` command against a replicated pair and a controller cluster (real processes on
 * 127.0.0.1): the checkpoint of an idle standby.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeControllerClients, dumpMembersOnFailure } from './cluster-process';
import {
  assertBuilt,
  killChildren,
  nodeStatus,
  removeTempDirs,
  runCli,
  standbyCaughtUp,
  startPair,
  until,
} from './serve-process';

beforeAll(assertBuilt);
afterEach(async (ctx) => {
  dumpMembersOnFailure(ctx.task.result?.state === 'fail');
  closeControllerClients();
  await killChildren();
  await removeTempDirs();
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
