/**
 * Gray failures with real processes: a primary that is up and answers Admin.Status but cannot
 * do its job must still be failed over to the healthy in-sync standby.
 *   hung disk:     node a's data dir is on a loop-mounted ext4 that the test freezes
 *                  (fsfreeze): its writes hang, its process stays up. Needs root, losetup,
 *                  mkfs.ext4, mount and fsfreeze: skipped with a message elsewhere, required
 *                  when REQUIRE_LOOP=1.
 *   stuck starting: node a restarts as primary through an HTTP CONNECT proxy (grpc_proxy, in
 *                  the test process) that tunnels its calls to the controller but refuses its
 *                  replication stream to b, so a stays `starting` while b is healthy.
 * Every allocation is recorded and the history must hold no ID acknowledged twice.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  closeControllerClients,
  restartBeforeFailover,
  startCluster,
  untilIn,
  untilInSync,
  untilPrimary,
  dumpMembersOnFailure,
} from './cluster-process';
import {
  clientOf,
  closeRecorders,
  expectCleanHistory,
  expectServingCountersCover,
  recorder,
} from './recorded-alloc';
import {
  assertBuilt,
  killChildren,
  nodeStatus,
  removeTempDirs,
  sleep,
  tempDir,
} from './serve-process';

const loopTools = ['losetup', 'mkfs.ext4', 'mount', 'umount', 'fsfreeze'];

function loopUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'a loop-mounted file system and fsfreeze need root';
  const missing = loopTools.filter(
    (tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0,
  );
  if (missing.length > 0) return `missing ${missing.join(', ')}`;
  if (!fs.existsSync('/dev/loop-control')) return 'no /dev/loop-control (loop devices)';
  return null;
}

const loopWhy = loopUnavailable();
if (loopWhy !== null && process.env.REQUIRE_LOOP === '1') {
  throw new Error(`gray hung-disk test: REQUIRE_LOOP=1 but ${loopWhy}`);
}
if (loopWhy !== null) {
  console.warn(
    `gray hung-disk test skipped: ${loopWhy} (set REQUIRE_LOOP=1 to make this an error)`,
  );
}

const mounts: string[] = [];
const proxies: Array<{ close(): void }> = [];

/** A fresh 256 MiB ext4 (sparse image in a temp dir), loop-mounted; unmounted in afterEach. */
async function loopFs(): Promise<string> {
  const dir = await tempDir('tally-loopfs-');
  const image = path.join(dir, 'disk.img');
  const mnt = path.join(dir, 'mnt');
  const fh = await fs.promises.open(image, 'w');
  await fh.truncate(256 * 1024 * 1024);
  await fh.close();
  execFileSync('mkfs.ext4', ['-q', '-F', image], { stdio: 'pipe' });
  await fs.promises.mkdir(mnt);
  execFileSync('mount', ['-o', 'loop', image, mnt], { stdio: 'pipe' });
  mounts.push(mnt);
  return mnt;
}

function fsfreeze(flag: '-f' | '-u', mnt: string): boolean {
  try {
    execFileSync('fsfreeze', [flag, mnt], { stdio: 'pipe' });
    return true;
  } catch {
    return false; // -u on a file system that is not frozen
  }
}

/** umount, retried while the processes that used it exit (a loop mount detaches with it). */
async function unmount(mnt: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      execFileSync('umount', [mnt], { stdio: 'pipe' });
      return;
    } catch {
      await sleep(250);
    }
  }
  execFileSync('umount', ['-l', mnt], { stdio: 'pipe' });
}

/**
 * An HTTP CONNECT proxy on 127.0.0.1 (what grpc-js uses with grpc_proxy): tunnels to any
 * target except those in `refused`, which get 403.
 */
async function connectProxy(refused: string[]): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const server = net.createServer((client) => {
    track(client);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      client.pause();
      const target = /^CONNECT (\S+) HTTP/.exec(head.subarray(0, end).toString('latin1'))?.[1];
      const colon = target?.lastIndexOf(':') ?? -1;
      if (target === undefined || colon < 0 || refused.includes(target)) {
        client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
        return;
      }
      const upstream = net.connect(Number(target.slice(colon + 1)), target.slice(0, colon), () => {
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      track(upstream);
      upstream.on('close', () => client.destroy());
      client.on('close', () => upstream.destroy());
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy = {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
  proxies.push(proxy);
  return proxy;
}

beforeAll(assertBuilt);
afterEach(async (ctx) => {
  dumpMembersOnFailure(ctx.task.result?.state === 'fail');
  // A process blocked on a frozen file system cannot be killed: thaw first.
  for (const mnt of mounts) fsfreeze('-u', mnt);
  closeRecorders();
  for (const p of proxies.splice(0)) p.close();
  closeControllerClients();
  await killChildren();
  for (const mnt of mounts.splice(0)) await unmount(mnt);
  await removeTempDirs();
});

describe.skipIf(loopWhy !== null)('gray failure: hung disk (loop-mounted ext4)', () => {
  it("gray hung-disk: the primary's disk hangs (fsfreeze) while its process answers Status: the controller fails over to the in-sync standby and allocations go on, no duplicate", async () => {
    const mnt = await loopFs();
    const cl = await startCluster(undefined, {}, { dataDirs: { a: path.join(mnt, 'a') } });
    await untilInSync(cl);
    const rec = recorder();
    const load = rec.load(clientOf(cl), 4, 2000);
    let frozen = false;
    try {
      await untilIn(cl, 'load flowing', () =>
        Promise.resolve(rec.history.acked().length >= 100 ? true : null),
      );
      frozen = fsfreeze('-f', mnt);
      expect(frozen, `fsfreeze -f ${mnt}`).toBe(true);
      const mark = rec.history.mark();
      await untilPrimary(cl, 'b', 20_000);
      await untilIn(
        cl,
        '50 allocations after the freeze',
        () => Promise.resolve(rec.ackedSince(mark).length >= 50 ? true : null),
        20_000,
      );
    } finally {
      if (frozen) fsfreeze('-u', mnt);
      await load.stop();
    }
    await expectCleanHistory(cl, rec);
    await expectServingCountersCover(cl, rec);
  }, 90_000);
});

/** A failover timeout longer than a's restart, so that a is never merely unreachable. */
const longFailoverTimeout = { controllerArgs: { '--failover-timeout-ms': '3000' } };

describe('gray failure: primary stuck starting', () => {
  it("gray stuck-starting: a restarted primary that stays 'starting' (held before it begins its epoch) with a healthy in-sync standby is failed over; allocations go on above every earlier ID", async () => {
    const cl = await startCluster(undefined, {}, longFailoverTimeout);
    const rec = recorder();
    const before = await rec.must(cl.nodes.a.address, 10);
    await untilInSync(cl);
    // The failpoint holds a after its standby accepted the epoch and before it begins it.
    await restartBeforeFailover(cl, 'a', {
      TALLY_FAILPOINTS: 'node.beforeBeginEpoch=sleep(60000)',
    });
    await untilIn(
      cl,
      "a back as a primary 'starting'",
      async () => {
        const s = await nodeStatus(cl.nodes.a.address);
        return s.role === 'primary' && s.state === 'starting' ? true : null;
      },
      10_000,
    );
    await untilPrimary(cl, 'b', 20_000);
    const config = await cl.config();
    expect(config.primary.id).toBe('b');
    expect(config.lastFailover?.reason).toMatch(/primary a is primary \(starting\)/);
    const after = await rec.must(cl.nodes.b.address, 10);
    expect(Math.min(...after)).toBeGreaterThan(Math.max(...before));
    // a, deposed, turns standby (it never wrote in the epoch it was holding).
    await untilIn(
      cl,
      'a a standby of b',
      async () => ((await nodeStatus(cl.nodes.a.address)).role === 'standby' ? true : null),
      20_000,
    );
    await expectCleanHistory(cl, rec);
    await expectServingCountersCover(cl, rec);
  }, 90_000);

  it('a restarted primary cut off from its (healthy) standby asks the controller and serves alone, like a running primary that loses its standby; no duplicate', async () => {
    // The failover timeout is longer than a starting primary waits for its standby (3 s):
    // with a shorter one the controller would fail over to b first, which is just as safe.
    const cl = await startCluster(
      undefined,
      {},
      {
        controllerArgs: { '--failover-timeout-ms': '10000' },
      },
    );
    const rec = recorder();
    const before = await rec.must(cl.nodes.a.address, 10);
    await untilInSync(cl);
    const proxy = await connectProxy([cl.nodes.b.address]);
    await restartBeforeFailover(cl, 'a', {
      grpc_proxy: `http://127.0.0.1:${proxy.port}`,
      no_grpc_proxy: 'no-such-host.invalid', // whatever no_proxy the environment has
    });
    await untilIn(
      cl,
      'a serving alone, approved by the controller',
      async () => {
        const [s, c] = [await nodeStatus(cl.nodes.a.address), await cl.config()];
        const alone = c.inSync.length === 1 && c.inSync[0] === 'a';
        return s.role === 'primary' && s.state === 'serving' && alone ? true : null;
      },
      20_000,
    );
    const after = await rec.must(cl.nodes.a.address, 10);
    expect(Math.min(...after)).toBeGreaterThan(Math.max(...before));
    expect((await cl.config()).primary.id).toBe('a');
    await expectCleanHistory(cl, rec);
    await expectServingCountersCover(cl, rec);
  }, 90_000);
});
