/**
 * The package as another project imports it: `tally` is the client library and loads no
 * server, node, WAL or native code; `tally/node` is for embedding a node. And the client's
 * controllerResolver follows the controller's primary.
 */
import { spawnSync } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { controllerResolver, TallyClient } from '../../src/client';
import { closeControllerClients, kill, startCluster, untilPrimary } from './cluster-process';
import { assertBuilt, killChildren, removeTempDirs, repoRoot, until } from './serve-process';

beforeAll(assertBuilt);
afterEach(async () => {
  closeControllerClients();
  await killChildren();
  await removeTempDirs();
});

/** Requires `specifier` from the repository root in a fresh node, and says what it loaded. */
function loaded(specifier: string): { exports: string[]; modules: string[] } {
  const script = `
    const m = require(${JSON.stringify(specifier)});
    process.stdout.write(JSON.stringify({ exports: Object.keys(m), modules: Object.keys(require.cache) }));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: repoRoot, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { exports: string[]; modules: string[] };
}

describe('the package', () => {
  it("'tally' is the client: no server, node, WAL or native module is loaded", () => {
    const { exports, modules } = loaded('tally');
    expect(exports).toEqual(
      expect.arrayContaining(['TallyClient', 'IdBlockAllocator', 'controllerResolver', 'toBase62']),
    );
    expect(exports).not.toContain('openNode');
    const own = modules.filter((f) => f.includes('/dist/'));
    expect(own.filter((f) => /\/dist\/(server|node|wal|controller|cli)\//.test(f))).toEqual([]);
    expect(modules.filter((f) => f.endsWith('.node'))).toEqual([]);
    expect(modules.some((f) => f.includes('/fs-native-extensions/'))).toBe(false);
  });

  it("'tally/node' embeds a node: openNode and startServer, and the client too", () => {
    const { exports } = loaded('tally/node');
    expect(exports).toEqual(expect.arrayContaining(['openNode', 'startServer', 'TallyClient']));
  });

  it('controllerResolver hands the client the primary the controller names, also after a failover', async () => {
    const cl = await startCluster();
    await untilPrimary(cl, 'a');
    const resolver = controllerResolver(cl.controller);
    const client = new TallyClient({ addresses: [], resolvePrimary: resolver });
    try {
      expect(await resolver()).toBe(cl.nodes.a.address);
      const first = await client.allocate('pkg', 1, { deadlineMs: 10_000 });
      await kill(cl.nodes.a.child, 'SIGKILL');
      await untilPrimary(cl, 'b');
      // The node serves before the controller has confirmed the promotion: until then the
      // controller says `promoting` and the resolver names no one.
      const named = await until(
        'the controller to name a primary',
        async () => (await resolver()) ?? null,
      );
      expect(named).toBe(cl.nodes.b.address);
      const next = await client.allocate('pkg', 1, { deadlineMs: 10_000 });
      expect(next.first).toBeGreaterThan(first.first);
    } finally {
      client.close();
      resolver.close();
    }
  });
});
