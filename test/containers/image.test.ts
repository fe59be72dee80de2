/**
 * The image on its own (GenericContainer): it runs as a non-root user under an init, reports
 * healthy through its gRPC HEALTHCHECK, serves allocations to the host through a port published
 * on 127.0.0.1, and stops cleanly (exit 0) on SIGTERM after its drain delay. The controller
 * runs from the same image.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StartedTestContainer, Wait } from 'testcontainers';
import { checkHealth } from '../../src/server/health-probe';
import { allocate, counterClient, fetchText } from '../integration/serve-process';
import { docker, dockerUnavailable, ensureImage, LoopbackContainer, testImage } from './docker';

describe.skipIf(dockerUnavailable() !== null)('the Tally image', () => {
  const started: StartedTestContainer[] = [];

  beforeAll(async () => {
    await ensureImage();
  }, 600_000);

  afterAll(async () => {
    for (const c of started) await c.stop({ timeout: 1 }).catch(() => undefined);
  });

  it('serves: healthy by its HEALTHCHECK, non-root under tini, allocations from the host, /readyz, and exit 0 on SIGTERM', async () => {
    const node = await new LoopbackContainer(testImage)
      .withCommand(['serve'])
      .withEnvironment({ TALLY_ID: 'solo', TALLY_DRAIN_DELAY_MS: '500' })
      .withExposedPorts(7400, 9400)
      .onLoopback()
      .withWaitStrategy(Wait.forHealthCheck())
      .withStartupTimeout(90_000)
      .start();
    started.push(node);
    const target = `127.0.0.1:${node.getMappedPort(7400)}`;
    const metrics = `http://127.0.0.1:${node.getMappedPort(9400)}`;

    // The ports are published on the loopback interface only.
    const ports = await docker('port', node.getId());
    expect(ports).toMatch(/^7400\/tcp -> 127\.0\.0\.1:\d+$/m);
    expect(ports).not.toMatch(/0\.0\.0\.0/);

    expect(await checkHealth(target, 'tally.v1.Counter')).toBe('SERVING');
    const client = counterClient(target);
    try {
      const r = await allocate(client, 'container', 3);
      expect(Number(r.first)).toBe(1);
      expect(r.count).toBe(3);
    } finally {
      client.close();
    }
    expect((await fetchText(`${metrics}/readyz`)).status).toBe(200);
    expect((await fetchText(`${metrics}/metrics`)).body).toMatch(/^tally_ids_allocated_total/m);

    const id = await node.exec(['id', '-u']);
    expect(id.output.trim()).toBe('10001');
    const pid1 = await node.exec(['cat', '/proc/1/cmdline']);
    expect(pid1.output.split('\0')[0]).toBe('/usr/bin/tini');

    // docker stop: SIGTERM to tini, which passes it on; node drains and exits 0.
    await docker('stop', '--time', '30', node.getId());
    const exit = await docker('inspect', '--format', '{{.State.ExitCode}}', node.getId());
    expect(exit.trim()).toBe('0');
    const logs = await docker('logs', node.getId());
    expect(logs).toContain('"msg":"tally: stopped"');
  });

  it('runs the controller too: its healthcheck finds the controller port, /role says controller', async () => {
    const controller = await new LoopbackContainer(testImage)
      .withCommand(['controller'])
      .withEnvironment({ TALLY_CONTROLLER_NODES: 'a=node-a:7400,b=node-b:7400' })
      .withExposedPorts(7402, 9402)
      .onLoopback()
      .withWaitStrategy(Wait.forHealthCheck())
      .withStartupTimeout(90_000)
      .start();
    started.push(controller);
    const role = await fetchText(`http://127.0.0.1:${controller.getMappedPort(9402)}/role`);
    expect(JSON.parse(role.body)).toMatchObject({ role: 'controller' });
    // No node has joined: the controller serves its API but holds no configuration yet.
    const ready = await fetchText(`http://127.0.0.1:${controller.getMappedPort(9402)}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatch(/not ready: no configuration yet/);
  });
});
