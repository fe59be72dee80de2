/**
 * A real full disk: the node's data dir sits on a 2 MiB tmpfs. Needs root (mount); skipped
 * with a message elsewhere, required in CI (CI=true or REQUIRE_ROOT=1).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import {
  allocate,
  allocateStream,
  assertBuilt,
  counterClient,
  killChildren,
  removeTempDirs,
  runCli,
  startServe,
  tempDir,
} from './serve-process';

const isRoot = process.getuid?.() === 0;
const required = process.env.CI === 'true' || process.env.REQUIRE_ROOT === '1';
if (!isRoot && !required) {
  console.warn('disk-full test skipped: needs root to mount a small tmpfs (runs in CI)');
}
const mounts: string[] = [];

afterAll(async () => {
  await killChildren();
  for (const mnt of mounts) execFileSync('umount', [mnt]);
  await removeTempDirs();
});

describe.skipIf(!isRoot && !required)('disk full (real ENOSPC on tmpfs)', () => {
  it('refuses with RESOURCE_EXHAUSTED, keeps every acknowledged ID, and resumes when space returns', async () => {
    assertBuilt();
    const mnt = path.join(await tempDir('tally-enospc-'), 'mnt');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
    mounts.push(mnt);
    const dataDir = path.join(mnt, 'data');
    const server = await startServe(dataDir, ['--segment-size-bytes', String(256 * 1024)]);
    // Leave room for about two more segments.
    const ballast = path.join(mnt, 'ballast');
    fs.writeFileSync(ballast, Buffer.alloc(1024 * 1024 - 64 * 1024, 1));
    const client = counterClient(server.target);
    let highestAcked = 0;
    let exhausted: { code: number; message: string } | null = null;
    for (let round = 0; round < 40 && exhausted === null; round++) {
      const requests = Array.from({ length: 2000 }, (_, i) => ({
        namespace: 'full',
        count: 1,
        correlationId: String(i),
      }));
      const { responses } = await allocateStream(client, requests);
      for (const r of responses) {
        if (r.error) exhausted ??= r.error;
        else highestAcked = Math.max(highestAcked, Number(r.first));
      }
    }
    expect(exhausted?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(exhausted?.message).toMatch(/no space/);
    // Still refusing (not crashed, not silently acknowledging).
    await expect(allocate(client, 'full', 1)).rejects.toMatchObject({
      code: grpc.status.RESOURCE_EXHAUSTED,
    });

    fs.rmSync(ballast);
    // A full disk is re-checked at most once a second (noSpaceRetryMs): retry for a while.
    let resumed: Awaited<ReturnType<typeof allocate>> | null = null;
    for (let attempt = 0; attempt < 50 && resumed === null; attempt++) {
      resumed = await allocate(client, 'full', 1).catch(async () => {
        await new Promise((r) => setTimeout(r, 100));
        return null;
      });
    }
    if (resumed === null) throw new Error('test: allocations did not resume after space returned');
    expect(Number(resumed.first)).toBeGreaterThan(highestAcked);
    client.close();

    server.proc.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
    const verify = await runCli(['wal', 'verify', '--data-dir', dataDir]);
    expect(verify.code, verify.stderr).toBe(0);
    const again = await startServe(dataDir, ['--segment-size-bytes', String(256 * 1024)]);
    const after = counterClient(again.target);
    expect(Number((await allocate(after, 'full', 1)).first)).toBeGreaterThan(Number(resumed.first));
    after.close();
    again.proc.kill('SIGTERM');
    await again.exited;
  });
});
