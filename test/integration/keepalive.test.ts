/**
 * Client keepalive (on by default): a connection to a node that went silent — paused, or
 * behind a partition, so no reset ever arrives — is abandoned within about a second by the
 * client's pings, and the call moves on to the next address instead of waiting out its
 * deadline. The server (grpc-js) accepts pings at any rate.
 */
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TallyClient } from '../../src/client';
import {
  assertBuilt,
  killChildren,
  removeTempDirs,
  sleep,
  startServe,
  tempDir,
} from './serve-process';

beforeAll(assertBuilt);
afterEach(async () => {
  await killChildren();
  await removeTempDirs();
});

describe('client keepalive', () => {
  it('a paused node is abandoned and the call completes on the next address well before its deadline', async () => {
    const a = await startServe(path.join(await tempDir(), 'a'), [], { id: 'a' });
    const b = await startServe(path.join(await tempDir(), 'b'), [], { id: 'b' });
    const client = new TallyClient({ addresses: [a.target, b.target] });
    try {
      // Connected to a; then idle a while: keepalive pings must not cost the connection.
      expect((await client.allocate('k', 1, { deadlineMs: 10_000 })).first).toBe(1);
      await sleep(2000);
      expect((await client.allocate('k', 1, { deadlineMs: 10_000 })).first).toBe(2);
      a.proc.kill('SIGSTOP');
      // Without keepalive this waits on a's stream for the whole 20 s and fails
      // DEADLINE_EXCEEDED; with it, the stream is dropped and b (a fresh counter) answers.
      const moved = await client.allocate('k', 1, { deadlineMs: 20_000 });
      expect(moved.first).toBe(1);
    } finally {
      a.proc.kill('SIGCONT');
      client.close();
    }
  });
});
