/**
 * The docker-compose cluster as an SRE runs it (docker-compose.yml, unchanged but for the
 * host ports and image tag it reads from the environment): allocations from the host through
 * the client library, `docker kill` of the primary's container under load and the failover,
 * the killed node back in sync, Prometheus scraping every process with the alert rules
 * loaded, and a restart of the whole cluster continuing every counter from the volumes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DockerComposeEnvironment,
  type StartedDockerComposeEnvironment,
  Wait,
} from 'testcontainers';
import { TallyClient } from '../../src/client';
import { checkHealth } from '../../src/server/health-probe';
import { ControllerClient } from '../../src/server/controller-client';
import { Recorder, ns } from '../integration/recorded-alloc';
import { fetchText, freePort, repoRoot, runCli, sleep, until } from '../integration/serve-process';
import { docker, dockerUnavailable, ensureImage, testImage } from './docker';

const project = `tallyct${process.pid}`;
const services = ['controller', 'node-a', 'node-b', 'prometheus'];

describe.skipIf(dockerUnavailable() !== null)('the docker-compose cluster', () => {
  let env: StartedDockerComposeEnvironment | undefined;
  let ports: Record<string, number>;
  let controller: ControllerClient;
  let client: TallyClient;
  /** Every allocation of the run, across the kill and the restart. */
  const rec = new Recorder();
  const nodeAddress = (id: string): string =>
    `127.0.0.1:${id === 'a' ? ports.TALLY_NODE_A_PORT : ports.TALLY_NODE_B_PORT}`;
  const container = (id: string): string => `${project}_node-${id}_1`;

  function compose(): DockerComposeEnvironment {
    const environment: Record<string, string> = {
      TALLY_IMAGE: testImage,
      PROMETHEUS_IMAGE: process.env.PROMETHEUS_IMAGE ?? 'tally-prometheus:local',
    };
    for (const [k, v] of Object.entries(ports)) environment[k] = String(v);
    return new DockerComposeEnvironment(repoRoot, 'docker-compose.yml')
      .withProjectName(project)
      .withEnvironment(environment)
      .withClientOptions({ executable: { standalone: true } })
      .withDefaultWaitStrategy(Wait.forHealthCheck())
      .withWaitStrategy(
        `${project}_prometheus_1`,
        Wait.forLogMessage(/Server is ready to receive web requests/),
      )
      .withStartupTimeout(120_000);
  }

  async function config(): Promise<Awaited<ReturnType<ControllerClient['getConfig']>>> {
    return controller.getConfig(2000);
  }

  async function dumpOnFailure(): Promise<void> {
    for (const s of ['controller', 'node-a', 'node-b']) {
      const logs = await docker('logs', '--tail', '40', `${project}_${s}_1`).catch(
        (e: Error) => e.message,
      );
      console.error(`---- ${s} ----\n${logs}`);
    }
  }

  beforeAll(async () => {
    await ensureImage();
    ports = {};
    for (const k of [
      'TALLY_NODE_A_PORT',
      'TALLY_NODE_B_PORT',
      'TALLY_CONTROLLER_PORT',
      'PROMETHEUS_PORT',
    ]) {
      ports[k] = await freePort();
    }
    env = await compose().up(services);
    controller = new ControllerClient(`127.0.0.1:${ports.TALLY_CONTROLLER_PORT}`);
    client = new TallyClient({
      addresses: [nodeAddress('a'), nodeAddress('b')],
      channelOptions: {
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 500,
      },
    });
  }, 900_000);

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') await dumpOnFailure();
  });

  afterAll(async () => {
    client?.close();
    controller?.close();
    rec.close();
    await env?.down({ removeVolumes: true, timeout: 5_000 });
  }, 120_000);

  it('serves allocations to the host through the client library; only the primary reports Counter SERVING', async () => {
    const c = await until('the controller names a serving primary', async () => {
      const v = await config().catch(() => null);
      return v !== null && !v.promoting && v.inSync.length === 2 ? v : null;
    });
    for (let i = 0; i < 20; i++) {
      const op = rec.history.invoke(ns, 'client');
      const a = await client.allocate(ns, 1, { deadlineMs: 10_000 });
      rec.history.ack(op, a.first, a.count);
    }
    const primary = nodeAddress(c.primary.id);
    const standby = nodeAddress(c.standby.id);
    await until('Counter health on the primary only', async () =>
      (await checkHealth(primary, 'tally.v1.Counter')) === 'SERVING' &&
      (await checkHealth(standby, 'tally.v1.Counter')) === 'NOT_SERVING'
        ? true
        : null,
    );
    expect(await checkHealth(standby, '')).toBe('SERVING');

    // The CLI on the host follows the controller: it hands out the nodes' advertised
    // (published) addresses, not the compose-network names it probes them by.
    const controllerAt = `127.0.0.1:${ports.TALLY_CONTROLLER_PORT}`;
    const alloc = await runCli([
      'alloc',
      '--controller',
      controllerAt,
      '--namespace',
      'cli',
      '--json',
    ]);
    expect(alloc.code, alloc.stderr).toBe(0);
    expect(JSON.parse(alloc.stdout)).toMatchObject({ namespace: 'cli', first: 1, count: 1 });
    const status = await runCli(['status', '--controller', controllerAt]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`${primary} `);
    // Every node answers (the node rows; a failover's reason above them may say a node was
    // unreachable once).
    const rows = status.stdout.slice(status.stdout.indexOf('\nNODE'));
    expect(rows).not.toMatch(/unreachable/);
    const view = await config();
    expect(view.primary.address).toBe(`node-${c.primary.id}:7400`);
    expect(view.primary.clientAddress).toBe(primary);
  });

  it('docker kill of the primary under load: the other node takes over, no ID twice or backwards', async () => {
    const before = await config();
    const victim = before.primary.id;
    // 4 allocate() loops through the client library, each ack's wall time kept: the longest
    // silence between two acks around the kill is what a client saw of the failover.
    const ackTimes: number[] = [];
    let running = true;
    const loops = Array.from({ length: 4 }, async () => {
      while (running) {
        const op = rec.history.invoke(ns, 'client');
        try {
          const a = await client.allocate(ns, 1, { deadlineMs: 3000 });
          rec.history.ack(op, a.first, a.count);
          ackTimes.push(Date.now());
        } catch {
          rec.history.fail(op);
          await sleep(20);
        }
      }
    });
    await sleep(1500);
    const killedAt = Date.now();
    await docker('kill', container(victim));
    const after = await until(
      'the controller names the other node primary',
      async () => {
        const v = await config().catch(() => null);
        return v !== null && !v.promoting && v.primary.id !== victim ? v : null;
      },
      60_000,
    );
    expect(after.epoch).toBeGreaterThan(before.epoch);
    await until('allocations acknowledged after the failover', async () =>
      ackTimes.filter((t) => t > killedAt).length >= 50 ? true : null,
    );
    running = false;
    await Promise.all(loops);
    expect(rec.history.violations()).toEqual([]);
    let silence = 0;
    for (let i = 1; i < ackTimes.length; i++) {
      const t = ackTimes[i] as number;
      if (t > killedAt) silence = Math.max(silence, t - (ackTimes[i - 1] as number));
    }
    console.info(
      `docker kill of ${victim}: longest silence between acknowledgements ${silence} ms (controller's promotion ${after.lastFailover?.durationMs ?? '?'} ms)`,
    );
  });

  it('the killed node starts again and rejoins as an in-sync standby', async () => {
    const c = await config();
    const down = c.standby.id;
    await docker('start', container(down));
    await until(
      'both nodes in sync again',
      async () => {
        const v = await config().catch(() => null);
        return v !== null && v.inSync.includes(down) && v.inSync.length === 2 ? v : null;
      },
      90_000,
    );
    const role = await until('the restarted node reports standby', async () => {
      const r = await checkHealth(nodeAddress(down), 'tally.v1.Counter').catch(() => null);
      return r === 'NOT_SERVING' ? r : null;
    });
    expect(role).toBe('NOT_SERVING');
  });

  it('Prometheus scrapes the controller and both nodes and has the alert rules loaded', async () => {
    const prom = `http://127.0.0.1:${ports.PROMETHEUS_PORT}`;
    const targets = await until(
      'the three Tally targets up',
      async () => {
        const r = await fetchText(`${prom}/api/v1/targets`).catch(() => null);
        if (r === null || r.status !== 200) return null;
        type Target = { health: string; labels: { job: string } };
        const active = (
          JSON.parse(r.body) as { data: { activeTargets: Target[] } }
        ).data.activeTargets.filter((t) => t.labels.job.startsWith('tally-'));
        return active.length === 3 && active.every((t) => t.health === 'up') ? active : null;
      },
      60_000,
    );
    expect(targets).toHaveLength(3);
    const rules = JSON.parse((await fetchText(`${prom}/api/v1/rules`)).body) as {
      data: { groups: Array<{ rules: Array<{ name: string }> }> };
    };
    const names = rules.data.groups.flatMap((g) => g.rules.map((r) => r.name));
    expect(names.length).toBeGreaterThanOrEqual(5);
  });

  it("a node's volume replaced: the controller takes it as a new member (out of the in-sync set), it is in sync once caught up, and IDs continue", async () => {
    const before = await config();
    const victim = before.standby.id;
    const oldIncarnation = before.members.find((m) => m.id === victim)?.incarnation;
    await docker('rm', '-f', container(victim));
    await docker('volume', 'rm', `${project}_node-${victim}-data`);
    env = await compose().up([`node-${victim}`]);
    const joined = await until(
      'the controller knows the new directory',
      async () => {
        const v = await config().catch(() => null);
        const m = v?.members.find((x) => x.id === victim);
        return m !== undefined && m.incarnation !== oldIncarnation ? v : null;
      },
      60_000,
    );
    expect(joined?.primary.id).toBe(before.primary.id);
    const logs = await docker('logs', `${project}_controller_1`);
    expect(logs).toContain(`${victim} runs on a new data directory`);
    await until(
      'the new member in sync once caught up',
      async () => {
        const v = await config().catch(() => null);
        return v !== null && v.inSync.includes(victim) && v.primary.id === before.primary.id
          ? v
          : null;
      },
      90_000,
    );
    for (let i = 0; i < 5; i++) {
      const op = rec.history.invoke(ns, 'client');
      const a = await client.allocate(ns, 1, { deadlineMs: 10_000 });
      rec.history.ack(op, a.first, a.count);
    }
    expect(rec.history.violations()).toEqual([]);
  });

  it('a restart of the whole cluster continues every counter from the volumes', async () => {
    const namespaces = ['orders', 'users', 'links'];
    const highest = new Map<string, number>();
    for (const n of namespaces) {
      for (let i = 0; i < 5; i++) {
        const op = rec.history.invoke(n, 'client');
        const a = await client.allocate(n, 7, { deadlineMs: 10_000 });
        rec.history.ack(op, a.first, a.count);
        highest.set(n, a.first + a.count - 1);
      }
    }
    highest.set(ns, rec.maxAcked());
    await env?.stop();
    env = await compose().up(services);
    for (const [n, last] of highest) {
      const op = rec.history.invoke(n, 'client');
      const a = await client.allocate(n, 1, { deadlineMs: 30_000 });
      rec.history.ack(op, a.first, a.count);
      expect(a.first, n).toBeGreaterThan(last);
    }
    expect(rec.history.violations()).toEqual([]);
  });
});
