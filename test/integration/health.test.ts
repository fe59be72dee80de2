/**
 * Role-aware health, on real processes: grpc.health.v1 says SERVING for tally.v1.Counter only
 * where allocations are served (so health-based routing and readiness probes pick the
 * primary), the metrics port answers /healthz, /readyz and /role, and SIGTERM turns health
 * NOT_SERVING before calls are refused (the drain delay).
 */
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkHealth } from '../../src/server/health-probe';
import {
  allocate,
  assertBuilt,
  counterClient,
  fetchText,
  killChildren,
  promote,
  removeTempDirs,
  startPair,
  startServe,
  stop,
  tempDir,
  until,
  type Server,
} from './serve-process';

beforeAll(assertBuilt);
afterEach(async () => {
  await killChildren();
  await removeTempDirs();
});

const counter = 'tally.v1.Counter';

async function probes(node: Server): Promise<Record<string, { status: number; body: string }>> {
  const out: Record<string, { status: number; body: string }> = {};
  for (const p of ['healthz', 'readyz', 'role']) {
    const r = await fetchText(`http://127.0.0.1:${node.metricsPort}/${p}`);
    out[p] = { status: r.status, body: r.body };
  }
  return out;
}

describe('role-aware health', () => {
  it('a standalone node serves Counter: SERVING, /readyz 200, /role standalone', async () => {
    const node = await startServe(path.join(await tempDir(), 'data'));
    expect(await checkHealth(node.target, '')).toBe('SERVING');
    expect(await checkHealth(node.target, counter)).toBe('SERVING');
    const p = await probes(node);
    expect(p.healthz?.status).toBe(200);
    expect(p.readyz?.status).toBe(200);
    expect(JSON.parse(p.role?.body ?? '{}')).toMatchObject({
      role: 'standalone',
      state: 'serving',
      serving: true,
    });
  });

  it('a standby is healthy but NOT_SERVING for Counter (/readyz 503); promoted, it turns SERVING', async () => {
    const pair = await startPair();
    // Health follows the role within a poll (100 ms) of the primary beginning to serve.
    await until('the primary reports Counter SERVING', async () =>
      (await checkHealth(pair.primary.target, counter)) === 'SERVING' ? true : null,
    );
    expect(await checkHealth(pair.standby.target, '')).toBe('SERVING');
    // Its start-up hint does not suggest allocating on the standby itself.
    expect(pair.standby.stdout()).toContain(
      'try: allocate on the primary (this node is its standby)',
    );
    expect(await checkHealth(pair.standby.target, counter)).toBe('NOT_SERVING');
    // The same as metrics: tally_node_serving on each; the standby no longer catching up.
    const metric = async (node: Server, name: string): Promise<string | undefined> => {
      const text = (await fetchText(`http://127.0.0.1:${node.metricsPort}/metrics`)).body;
      return new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1];
    };
    expect(await metric(pair.primary, 'tally_node_serving')).toBe('1');
    expect(await metric(pair.standby, 'tally_node_serving')).toBe('0');
    await until('the standby reports tally_replication_catching_up 0', async () =>
      (await metric(pair.standby, 'tally_replication_catching_up')) === '0' ? true : null,
    );
    const p = await probes(pair.standby);
    expect(p.healthz?.status).toBe(200);
    expect(p.readyz?.status).toBe(503);
    expect(p.readyz?.body).toMatch(/not ready: standby \(serving\); allocations go to the primary/);
    expect(JSON.parse(p.role?.body ?? '{}')).toMatchObject({ role: 'standby', serving: false });

    await stop(pair.primary);
    const run = await promote(pair.standby.target, '2');
    expect(run.code, run.stderr).toBe(0);
    await until('the promoted standby reports Counter SERVING', async () =>
      (await checkHealth(pair.standby.target, counter)) === 'SERVING' ? true : null,
    );
    const after = await probes(pair.standby);
    expect(after.readyz?.status).toBe(200);
    expect(JSON.parse(after.role?.body ?? '{}')).toMatchObject({ role: 'standalone', epoch: 2 });
  });

  it('SIGTERM: NOT_SERVING at once, calls still answered during the drain delay, then exit 0', async () => {
    const node = await startServe(path.join(await tempDir(), 'data'), ['--drain-delay-ms', '5000']);
    const client = counterClient(node.target);
    try {
      node.proc.kill('SIGTERM');
      await until('health NOT_SERVING after SIGTERM', async () =>
        (await checkHealth(node.target, counter)) === 'NOT_SERVING' ? true : null,
      );
      expect(await checkHealth(node.target, '')).toBe('NOT_SERVING');
      const ready = await fetchText(`http://127.0.0.1:${node.metricsPort}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.body).toMatch(/draining/);
      // The delay is 5 s: a client that has not noticed yet is still served.
      const r = await allocate(client, 'drain', 2);
      expect(Number(r.first)).toBe(1);
    } finally {
      client.close();
    }
    expect((await node.exited).code).toBe(0);
  });

  it("Ctrl-C then a supervisor's SIGTERM: the drain is not cut short (exit 0); SIGTERM twice exits 1 at once", async () => {
    const node = await startServe(path.join(await tempDir(), 'data'), ['--drain-delay-ms', '2000']);
    node.proc.kill('SIGINT');
    await until('health NOT_SERVING after SIGINT', async () =>
      (await checkHealth(node.target, counter)) === 'NOT_SERVING' ? true : null,
    );
    node.proc.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
    expect(node.stderr()).not.toContain('second signal');

    const other = await startServe(path.join(await tempDir(), 'data'), [
      '--drain-delay-ms',
      '60000',
    ]);
    other.proc.kill('SIGTERM');
    await until('health NOT_SERVING after SIGTERM', async () =>
      (await checkHealth(other.target, counter)) === 'NOT_SERVING' ? true : null,
    );
    other.proc.kill('SIGTERM');
    expect((await other.exited).code).toBe(1);
    expect(other.stderr()).toContain('second signal during shutdown; exiting now');
  });
});
