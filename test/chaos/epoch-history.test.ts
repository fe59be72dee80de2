/**
 * A primary that has compacted away a whole epoch must still recognise a returning standby
 * whose log ends in that epoch (real processes; found by the failover benchmark).
 *
 * a primary (epoch 1) → a killed, b promoted (epoch 2) → a back in sync → b killed, a promoted
 * (epoch 3) → a checkpoints and compacts past every epoch-2 record → b restarts. b's log ends
 * in epoch 2 with acknowledged records in it, and a's WAL now holds only epoch 3. Before the
 * fix a kept epoch boundaries only for the records still in its WAL, so it could not match b's
 * log at all, took b's acknowledged records for history it had lost, fenced itself and stepped
 * down: the cluster stopped serving (b, not in sync, could not be promoted either).
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  allocOn,
  cleanUpClusterTest,
  kill,
  restartBeforeFailover,
  startCluster,
  untilInSync,
  untilPrimary,
} from '../integration/cluster-process';
import { assertBuilt, nodeStatus } from '../integration/serve-process';

beforeAll(assertBuilt);
afterEach((ctx) => cleanUpClusterTest(ctx.task.result?.state === 'fail'));

/** Small segments and frequent checkpoints: a few hundred allocations compact an epoch away. */
const nodeEnv = { TALLY_SEGMENT_SIZE_BYTES: '4096', TALLY_CHECKPOINT_RECORDS: '20' };

describe('epoch history survives compaction', () => {
  it('a standby whose log ends in an epoch the primary compacted away rejoins; the primary keeps serving', async () => {
    const cl = await startCluster(undefined, {}, { nodeEnv });
    await untilInSync(cl);
    const acked: number[] = await allocOn(cl.nodes.a.address, 40); // epoch 1

    await kill(cl.nodes.a.child, 'SIGKILL');
    await untilPrimary(cl, 'b');
    acked.push(...(await allocOn(cl.nodes.b.address, 40))); // epoch 2
    cl.startNode('a');
    await untilInSync(cl);

    await kill(cl.nodes.b.child, 'SIGKILL');
    await untilPrimary(cl, 'a');
    const promoted = await cl.config();
    const epoch3Start = Number((await nodeStatus(cl.nodes.a.address)).lastIndex);
    acked.push(...(await allocOn(cl.nodes.a.address, 400))); // epoch 3, past many segments
    // The premise: a checkpointed well inside epoch 3 (and compacted the segments below).
    const a = await nodeStatus(cl.nodes.a.address);
    expect(Number(a.checkpointIndex)).toBeGreaterThan(epoch3Start + 100);

    cl.startNode('b');
    await untilInSync(cl);
    const after = await cl.config();
    expect(after.primary.id).toBe('a');
    expect(after.epoch).toBe(promoted.epoch);
    acked.push(...(await allocOn(cl.nodes.a.address, 5)));
    expect(new Set(acked).size).toBe(acked.length);
    expect(acked).toEqual([...acked].sort((x, y) => x - y));
  });

  it('the boundaries outlive a restart of the primary: they come back from its snapshot', async () => {
    const cl = await startCluster(undefined, {}, { nodeEnv });
    await untilInSync(cl);
    const acked: number[] = await allocOn(cl.nodes.a.address, 40); // epoch 1

    await kill(cl.nodes.a.child, 'SIGKILL');
    await untilPrimary(cl, 'b');
    const promoted = await cl.config();
    const epoch2Start = Number((await nodeStatus(cl.nodes.b.address)).lastIndex);
    acked.push(...(await allocOn(cl.nodes.b.address, 400))); // epoch 2 compacts epoch 1 away
    expect(Number((await nodeStatus(cl.nodes.b.address)).checkpointIndex)).toBeGreaterThan(
      epoch2Start + 100,
    );
    // b restarts (before the controller could act): what it knows of epoch 1 is in its snapshot.
    await restartBeforeFailover(cl, 'b');
    await untilPrimary(cl, 'b');
    acked.push(...(await allocOn(cl.nodes.b.address, 5)));

    cl.startNode('a'); // its log ends in epoch 1
    await untilInSync(cl);
    const after = await cl.config();
    expect(after.primary.id).toBe('b');
    expect(after.epoch).toBe(promoted.epoch);
    acked.push(...(await allocOn(cl.nodes.b.address, 5)));
    expect(new Set(acked).size).toBe(acked.length);
    expect(acked).toEqual([...acked].sort((x, y) => x - y));
  });
});
