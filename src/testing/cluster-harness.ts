/**
 * A whole cluster in one process: the real Controller and two real TallyNodes. Each node on its
 * own FaultStorage, replication over a FaultNetwork, the controller's calls to the nodes and
 * the nodes' calls to the controller (Join, RemoveFromInSync, AddToInSync) as direct calls.
 *
 * On a SimClock (options.clock) the whole cluster runs in virtual time: every timer of the
 * controller, the nodes and the network is the clock's, and with options.seed every random
 * choice (identities, nonces, jitter, network faults) comes from it; the harness's own waits
 * step the clock. The caller steps it through anything else it awaits (clock.runUntilSettled).
 */
import pino from 'pino';
import { UnavailableError } from '../core/errors';
import { createMetrics } from '../core/metrics';
import { expect, vi } from 'vitest';
import { Controller, type NodeAdmin, type PromoteCall } from '../controller/controller';
import { FileConfigStore, type NodeRef } from '../controller/config-store';
import { createControllerMetrics } from '../controller/metrics';
import { openNode, type NodeOptions } from '../node/node';
import type {
  CounterNode,
  InSyncAuthority,
  InSyncRequest,
  JoinReport,
  Placement,
} from '../node/types';
import { refuseReplication } from '../replication/protocol';
import { sleep, systemClock, systemRandom, type Clock, type Random } from '../core/clock';
import { FaultNetwork } from './fault-network';
import { FaultStorage } from './fault-storage';
import { fenceOnce, joinOnce, report, toChange } from './cluster-wiring';
import { InProcessTransport } from './in-process-transport';

export { report } from './cluster-wiring';
import { alloc, testDataDir } from './node-harness';
import { seededRandom } from './random';
import { SimClock } from './sim-clock';

export const A: NodeRef = { id: 'a', address: 'a:1' };
export const B: NodeRef = { id: 'b', address: 'b:1' };

export interface ClusterOptions {
  failoverTimeoutMs?: number;
  probeIntervalMs?: number;
  vouchPersistMs?: number;
  /** Every timer and clock read of the controller, the nodes and the network (default: real). */
  clock?: Clock;
  /** Seeds the network's faults, and every random identity and jitter (default: the OS's). */
  seed?: number;
}

export class Cluster {
  disks: Record<'a' | 'b', FaultStorage> = { a: new FaultStorage(), b: new FaultStorage() };
  nodes: Record<'a' | 'b', CounterNode | null> = { a: null, b: null };
  /** Nodes whose admin (controller→node) link is cut. */
  adminDown = new Set<string>();
  ctlDisk = new FaultStorage();
  /** Every AddToInSync request a node sent (to replay one late). */
  addRequests: InSyncRequest[] = [];
  controller: Controller | null = null;
  readonly net: FaultNetwork;
  readonly clock: Clock;
  private readonly transports: InProcessTransport[] = [];
  /** Silent unless REVIEW_LOG names a level; stamped with the cluster's clock (virtual time). */
  readonly logger: pino.Logger;

  constructor(private readonly ctlOpts: ClusterOptions = {}) {
    this.clock = ctlOpts.clock ?? systemClock;
    const clock = this.clock;
    // A plain stream, not pino's own (sonic-boom schedules real ticks and timers).
    this.logger = pino(
      {
        level: process.env.REVIEW_LOG ?? 'silent',
        timestamp: () => `,"time":${clock.nowUnixMs()}`,
      },
      { write: (line: string) => void process.stdout.write(line) },
    );
    this.net = new FaultNetwork(ctlOpts.seed ?? 7, {}, this.clock);
  }

  /** One random stream per component, so that one drawing more does not shift the others. */
  private random(stream: number): Random {
    const seed = this.ctlOpts.seed;
    return seed === undefined ? systemRandom : seededRandom(seed * 16 + stream);
  }

  /** A client transport to the nodes in this process; crash() resets its streams to the node. */
  transport(): InProcessTransport {
    const t = new InProcessTransport(
      (address) => this.nodes[address === A.address ? 'a' : 'b'],
      this.clock,
      this.logger,
    );
    this.transports.push(t);
    return t;
  }

  /** Waits until check() passes: stepping a SimClock (virtual ms), else polling in real time. */
  private async until(check: () => void, timeoutMs = 10_000): Promise<void> {
    const clock = this.clock;
    if (!(clock instanceof SimClock)) {
      await vi.waitFor(check, { timeout: timeoutMs });
      return;
    }
    const passes = (): boolean => {
      try {
        check();
        return true;
      } catch {
        return false;
      }
    };
    if (!(await clock.runUntilTrue(passes, timeoutMs))) check();
  }

  async startController(): Promise<Controller> {
    const admin: NodeAdmin = {
      status: (address) => this.call(address, (n) => Promise.resolve(report(n))),
      fence: (address, ballot) => this.call(address, (n) => fenceOnce(n, ballot)),
      promote: (address, epoch, standby, call: PromoteCall) =>
        this.call(address, async (n) => {
          await n.promote(epoch, {
            standby,
            aloneApproved: call.aloneApproved,
            force: call.skipAhead > 0,
            skipAhead: call.skipAhead,
            ballot: call.ballot,
          });
        }),
      stepDown: (address, epoch) => this.call(address, (n) => n.stepDown(epoch)),
    };
    this.controller = new Controller({
      store: new FileConfigStore(this.ctlDisk, '/ctl'),
      admin,
      clock: this.clock,
      random: this.random(0),
      logger: this.logger,
      metrics: createControllerMetrics({ defaults: false }),
      nodes: [A, B],
      probeIntervalMs: this.ctlOpts.probeIntervalMs ?? 50,
      failoverTimeoutMs: this.ctlOpts.failoverTimeoutMs ?? 300,
      startupGraceMs: 1000,
      promoteTimeoutMs: 1500,
      vouchPersistMs: this.ctlOpts.vouchPersistMs ?? 1000,
    });
    await this.controller.start();
    return this.controller;
  }

  async stopController(): Promise<void> {
    await this.controller?.stop();
    this.controller = null;
  }

  private call<T>(address: string, fn: (n: CounterNode) => Promise<T>): Promise<T> {
    const id = address === A.address ? 'a' : 'b';
    const n = this.nodes[id];
    if (n === null || this.adminDown.has(id))
      return Promise.reject(new UnavailableError(`${id} down`));
    const s = n.status().state;
    if (s === 'closed' || s === 'failed') return Promise.reject(new UnavailableError(`${id} ${s}`));
    return fn(n);
  }

  /** Delivers a node's request to the controller (again): a late or duplicated message. */
  deliverAdd(r: InSyncRequest) {
    return this.controller!.addToInSync(toChange(r));
  }

  /**
   * Controller, a and b started; a serving as primary with b in sync, and `ids` 1..allocated
   * acknowledged. Returns the two nodes.
   */
  async started(allocated = 10): Promise<{ a: CounterNode; b: CounterNode }> {
    await this.settled(this.startController());
    const [a, b] = await this.settled(Promise.all([this.startNode('a'), this.startNode('b')]));
    await this.until(() => expect(a.status().state).toBe('serving'));
    await this.until(() => expect(this.controller?.current?.inSync.length).toBe(2));
    for (let i = 0; i < allocated; i++) await this.settled(alloc(a, 'ids', 1));
    return { a, b };
  }

  private authority(): InSyncAuthority {
    const ctl = () => {
      if (this.controller === null) throw new UnavailableError('controller down');
      return this.controller;
    };
    return {
      removeFromInSync: async (r) => void (await ctl().removeFromInSync(toChange(r))),
      addToInSync: async (r) => {
        this.addRequests.push(r);
        await ctl().addToInSync(toChange(r));
      },
    };
  }

  private async place(id: string, r: JoinReport): Promise<Placement> {
    for (;;) {
      try {
        if (this.controller === null) throw new UnavailableError('controller down');
        return await joinOnce(this.controller, id, r);
      } catch (err) {
        if (!(err instanceof UnavailableError)) throw err;
        await sleep(this.clock, 50);
      }
    }
  }

  options(id: 'a' | 'b', extra: Partial<NodeOptions> = {}): NodeOptions {
    const self = id === 'a' ? A : B;
    return {
      id,
      dataDir: testDataDir,
      logger: this.logger,
      metrics: createMetrics({ defaults: false }),
      storage: this.disks[id],
      lock: false,
      segmentSizeBytes: 8192,
      place: (r) => this.place(id, r),
      controller: this.authority(),
      degradeAfterMs: 200,
      dial: (target) => this.net.dialer(target, () => this.accept(target)),
      advertiseAddress: self.address,
      clock: this.clock,
      random: this.random(id === 'a' ? 1 : 2),
      replicationAckTimeoutMs: 400,
      ackWaitMs: 5000,
      ...extra,
    };
  }

  async startNode(id: 'a' | 'b', extra: Partial<NodeOptions> = {}): Promise<CounterNode> {
    const n = await openNode(this.options(id, extra));
    this.nodes[id] = n;
    return n;
  }

  /** Power cut on `id`: only what was durable survives; the process is gone. */
  async crash(id: 'a' | 'b'): Promise<void> {
    const n = this.nodes[id];
    this.disks[id] = this.disks[id].crash();
    this.nodes[id] = null;
    for (const t of this.transports) t.drop(id === 'a' ? A.address : B.address);
    if (n !== null) await this.settled(n.close().catch(() => undefined));
  }

  /** Awaits p, stepping a SimClock meanwhile (what p waits for may be the clock's timers). */
  settled<T>(p: Promise<T>, withinMs = 60_000): Promise<T> {
    return this.clock instanceof SimClock ? this.clock.runUntilSettled(p, withinMs) : p;
  }

  private accept(target: string) {
    return (channel: Parameters<CounterNode['openReplication']>[0], peer: string) => {
      const id = target === A.address ? 'a' : 'b';
      const node = this.nodes[id];
      if (node === null) {
        return refuseReplication(channel, new UnavailableError('harness: connection refused'));
      }
      return node.openReplication(channel, peer);
    };
  }

  async close(): Promise<void> {
    await this.settled(this.stopController().catch(() => undefined));
    for (const id of ['a', 'b'] as const) {
      const n = this.nodes[id];
      if (n !== null) await this.settled(n.close().catch(() => undefined));
    }
    for (const t of this.transports) t.close();
    this.net.stop();
  }
}
