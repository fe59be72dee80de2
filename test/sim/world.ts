/**
 * One simulated Tally cluster in one process: the real Controller, two real TallyNodes (a, b)
 * each on its own FaultStorage, replication over a FaultNetwork, the controller's calls to the
 * nodes and theirs to it over simulated links, and clients (the real TallyClient) over
 * SimNodeTransport. Every timer and clock read goes through one Clock, every random choice
 * through one seeded generator, so a seed replays the same run.
 *
 * The world offers the faults; the schedule (run.ts) picks them. Each fault and each change
 * of role goes into `trace`, whose digest identifies the run.
 */
import pino from 'pino';
import { TallyClient } from '../../src/client';
import { Controller, type NodeAdmin, type PromoteCall } from '../../src/controller/controller';
import { FileConfigStore, type NodeRef } from '../../src/controller/config-store';
import { createControllerMetrics } from '../../src/controller/metrics';
import { sleep, type Clock, type Random } from '../../src/core/clock';
import { UnavailableError } from '../../src/core/errors';
import { controllerCallMs, probeCallMs, roleChangeCallMs } from '../../src/core/limits';
import { createMetrics } from '../../src/core/metrics';
import { openNode, type NodeOptions } from '../../src/node/node';
import type { CounterNode, InSyncAuthority, JoinReport, Placement } from '../../src/node/types';
import { refuseReplication } from '../../src/replication/protocol';
import { fenceOnce, joinOnce, report, toChange } from '../../src/testing/cluster-wiring';
import { FaultNetwork } from '../../src/testing/fault-network';
import { FaultStorage } from '../../src/testing/fault-storage';
import { seededRandom } from '../../src/testing/random';
import { SimNodeTransport, type ClientNet, type SimStream } from './node-transport';

export type NodeId = 'a' | 'b';
export const nodeIds: readonly NodeId[] = ['a', 'b'];
const refs: Record<NodeId, NodeRef> = {
  a: { id: 'a', address: 'a:1' },
  b: { id: 'b', address: 'b:1' },
};
const idOf = (address: string): NodeId | null =>
  address === refs.a.address ? 'a' : address === refs.b.address ? 'b' : null;
const dataDir = '/data';
const silent = pino({ level: process.env.SIM_LOG ?? 'silent' });

export interface WorldOptions {
  clock: Clock;
  /** Every random stream of the run derives from it (one per component: see stream()). */
  seed: number;
  /** Message delays on every simulated link, ms: uniform in [0, delayMsMax]. */
  delayMsMax: number;
}

export class World implements ClientNet {
  readonly clock: Clock;
  /** The simulated links' delays and losses. */
  readonly random: () => number;
  readonly trace: string[] = [];
  disks: Record<NodeId, FaultStorage> = { a: new FaultStorage(), b: new FaultStorage() };
  ctlDisk = new FaultStorage();
  readonly nodes: Record<NodeId, CounterNode | null> = { a: null, b: null };
  /** A node being opened (recovering): its process holds no port yet. */
  readonly starting = new Set<NodeId>();
  controller: Controller | null = null;
  readonly repl: FaultNetwork;
  /** Nodes cut off from the controller (both directions). */
  readonly adminCut = new Set<NodeId>();
  /**
   * Controller→node connections that hold what is sent until they heal (TCP retransmitting),
   * by node: the connection of the controller process running when the stall was set (a
   * controller started since dials a new one, which is not stalled). It begins with the next
   * role change sent (`armed` until then): a link that stalls right after a promotion was
   * sent, the promotion held in it.
   */
  private readonly adminStalls = new Map<
    NodeId,
    { gen: number; armed: boolean; held: Promise<void>; release: () => void }
  >();
  /** `client|node` pairs cut apart. */
  readonly clientCut = new Set<string>();
  private readonly streams = new Set<SimStream>();
  private readonly lostListeners: Array<(address: string) => void> = [];
  /** Bumped at each start and crash: async work of an older process is ignored. */
  private readonly generation: Record<NodeId, number> = { a: 0, b: 0 };
  private ctlGeneration = 0;
  readonly clients: TallyClient[] = [];
  private readonly ctlRandom: Random;
  private readonly nodeRandom: Record<NodeId, Random>;

  constructor(private readonly opts: WorldOptions) {
    this.clock = opts.clock;
    this.random = this.stream(1);
    this.ctlRandom = this.stream(3);
    this.nodeRandom = { a: this.stream(4), b: this.stream(5) };
    this.repl = new FaultNetwork(opts.seed * 64 + 2, {}, opts.clock);
  }

  /**
   * One random stream per component (links, controller, each node, each client), so that one
   * component drawing more does not shift the others' draws.
   */
  stream(k: number): ReturnType<typeof seededRandom> {
    return seededRandom(this.opts.seed * 64 + k);
  }

  log(event: string): void {
    this.trace.push(`${this.clock.monotonicMs().toFixed(3)} ${event}`);
  }

  // ---- ClientNet (SimNodeTransport) ---------------------------------------------------------
  node(address: string): CounterNode | null {
    const id = idOf(address);
    return id === null ? null : this.nodes[id];
  }

  linkUp(client: string, address: string): boolean {
    const id = idOf(address);
    return id !== null && !this.clientCut.has(`${client}|${id}`);
  }

  delayMs(): number {
    return this.random() * this.opts.delayMsMax;
  }

  track(stream: SimStream): void {
    this.streams.add(stream);
  }

  untrack(stream: SimStream): void {
    this.streams.delete(stream);
  }

  /** Ends the client streams to `id` (for `client` only, when given). */
  private breakStreams(id: NodeId, why: string, client?: string): void {
    for (const s of [...this.streams]) {
      if (idOf(s.address) === id && (client === undefined || s.client === client)) s.broken(why);
    }
  }

  // ---- processes ------------------------------------------------------------------------------
  newClient(name: string): TallyClient {
    const jitter = this.stream(10 + this.clients.length);
    const client = new TallyClient({
      addresses: [refs.a.address, refs.b.address],
      transport: new SimNodeTransport(this, name),
      clock: this.clock,
      deadlineMs: 3000,
      backoff: { random: jitter },
    });
    this.clients.push(client);
    return client;
  }

  async startController(): Promise<void> {
    if (this.controller !== null) return;
    const gen = ++this.ctlGeneration;
    const controller = new Controller({
      store: new FileConfigStore(this.ctlDisk, '/ctl'),
      admin: this.admin(gen),
      clock: this.clock,
      random: this.ctlRandom,
      logger: silent,
      metrics: createControllerMetrics({ defaults: false }),
      nodes: [refs.a, refs.b],
      probeIntervalMs: 50,
      failoverTimeoutMs: 300,
      startupGraceMs: 1000,
      promoteTimeoutMs: 1500,
      vouchPersistMs: 1000,
    });
    this.controller = controller;
    try {
      await controller.start();
      this.log('controller started');
    } catch (err) {
      if (gen === this.ctlGeneration) this.controller = null;
      this.log(`controller refused to start: ${(err as Error).message}`);
    }
  }

  /** The controller's process dies; only what its disk made durable survives. */
  async crashController(): Promise<void> {
    const c = this.controller;
    if (c === null) return;
    this.ctlGeneration++;
    this.controller = null;
    this.ctlDisk = this.ctlDisk.crash();
    this.log('controller crashed');
    await c.stop().catch(() => undefined);
  }

  startNode(id: NodeId): void {
    if (this.nodes[id] !== null || this.starting.has(id)) return;
    const gen = ++this.generation[id];
    this.starting.add(id);
    this.log(`${id} starting`);
    openNode(this.nodeOptions(id, gen)).then(
      (node) => {
        this.starting.delete(id);
        if (gen !== this.generation[id]) {
          void node.close().catch(() => undefined);
          return;
        }
        this.nodes[id] = node;
        this.log(`${id} up: ${node.status().role} epoch ${node.status().epoch}`);
        this.checkEpochOwners();
        node.failed.then(
          (err) => {
            if (gen !== this.generation[id]) return;
            this.log(`${id} failed: ${err.message}`);
            void this.crashNode(id, { keepDisk: true });
          },
          () => undefined,
        );
      },
      (err: Error) => {
        this.starting.delete(id);
        if (gen !== this.generation[id]) return;
        this.log(`${id} refused to start: ${err.name}: ${err.message}`);
        this.refusedToStart.set(id, err.name);
      },
    );
  }

  /** Nodes whose last start failed, with the error's name (CorruptionError: damage found). */
  readonly refusedToStart = new Map<NodeId, string>();

  /**
   * The node's process dies. Its disk keeps only what was made durable (a torn last write
   * when `tearAt` is given), unless `keepDisk` (a clean exit: everything written is there).
   */
  async crashNode(id: NodeId, opts: { tearAt?: number; keepDisk?: boolean } = {}): Promise<void> {
    const node = this.nodes[id];
    this.generation[id]++;
    this.starting.delete(id);
    this.nodes[id] = null;
    if (!opts.keepDisk) this.disks[id] = this.disks[id].crash({ tearLastWriteAt: opts.tearAt });
    this.log(`${id} crashed${opts.tearAt !== undefined ? ` (torn at ${opts.tearAt})` : ''}`);
    this.breakStreams(id, `sim: ${id} crashed`);
    if (!this.adminCut.has(id)) for (const lost of this.lostListeners) lost(refs[id].address);
    await node?.close().catch(() => undefined);
  }

  isUp(id: NodeId): boolean {
    return this.nodes[id] !== null;
  }

  isDown(id: NodeId): boolean {
    return this.nodes[id] === null && !this.starting.has(id);
  }

  /** Invariants the world sees broken (the run reports each as a violation). */
  readonly broken: string[] = [];

  /**
   * One primary per epoch number: two nodes serving as primary of the same epoch, each its
   * own, are two histories (each may acknowledge alone; a controller replaced meanwhile found
   * one with a promotion still under way, seed 23799, or one in the network).
   */
  checkEpochOwners(): void {
    const [a, b] = nodeIds.map((id) => this.nodes[id]?.status() ?? null);
    if (a === null || a === undefined || b === null || b === undefined) return;
    const leads = (s: ReturnType<CounterNode['status']>, id: string) =>
      s.role !== 'standby' && s.epochPrimary === id && s.state !== 'failed';
    if (a.epoch === b.epoch && leads(a, 'a') && leads(b, 'b')) {
      const why = `two primaries of epoch ${a.epoch}: a and b each lead it`;
      if (this.broken.includes(why)) return;
      this.broken.push(why);
      this.log(`VIOLATION ${why}`);
    }
  }

  // ---- network faults --------------------------------------------------------------------------
  cutAdmin(id: NodeId): void {
    this.adminCut.add(id);
    this.log(`admin link to ${id} cut`);
  }

  stallAdmin(id: NodeId): void {
    if (this.adminStalls.has(id)) return;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    this.adminStalls.set(id, { gen: this.ctlGeneration, armed: true, held, release });
    this.log(`admin link to ${id} stalls at the next role change`);
  }

  unstallAdmin(id: NodeId): void {
    const stall = this.adminStalls.get(id);
    if (stall === undefined) return;
    this.adminStalls.delete(id);
    stall.release();
    this.log(`admin link to ${id} delivers again`);
  }

  cutClient(client: string, id: NodeId): void {
    this.clientCut.add(`${client}|${id}`);
    this.log(`${client}↔${id} cut`);
    // Keepalive: the client gives up on the silent connection within a second.
    this.clock.setTimeout(() => {
      if (this.clientCut.has(`${client}|${id}`)) this.breakStreams(id, 'sim: keepalive', client);
    }, 750);
  }

  healAll(): void {
    this.adminCut.clear();
    for (const id of [...this.adminStalls.keys()]) this.unstallAdmin(id);
    this.clientCut.clear();
    this.repl.heal();
    this.log('healed');
  }

  // ---- the wiring -----------------------------------------------------------------------------
  private delay(): Promise<void> {
    return new Promise((resolve) => this.clock.setTimeout(resolve, this.delayMs()));
  }

  /**
   * Settles with `work`, or fails after `deadlineMs` (the real call's gRPC deadline: a node
   * whose disk hangs, or that died while the call ran, never answers, and its caller must not
   * wait forever).
   */
  private withDeadline<T>(work: Promise<T>, deadlineMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimeout(
        () => reject(new UnavailableError(`sim: ${what}: deadline of ${deadlineMs} ms exceeded`)),
        deadlineMs,
      );
      work.then(
        (v) => {
          this.clock.clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          this.clock.clearTimeout(timer);
          reject(err as Error);
        },
      );
    });
  }

  /**
   * A call over the controller↔node link: it fails when the link is cut or nothing serves, and
   * a controller process that crashed makes no more calls (`gen`: the calling process). A call
   * sent is delivered even if its controller crashes meanwhile (TCP sends what a dead process
   * wrote), late when the link stalls (stall-admin); the caller's deadline covers the whole
   * call, as gRPC's does.
   */
  private toNode<T>(
    gen: number,
    address: string,
    fn: (n: CounterNode) => Promise<T>,
    deadlineMs: number,
    roleChange = false,
  ): Promise<T> {
    const id = idOf(address);
    if (gen !== this.ctlGeneration) {
      return Promise.reject(new UnavailableError('sim: the calling controller is gone'));
    }
    // The node process the call's connection leads to: one that dies meanwhile resets it.
    const nodeProcess = id === null ? -1 : this.generation[id];
    const call = async (): Promise<T> => {
      await this.delay();
      const stall = id === null ? undefined : this.adminStalls.get(id);
      if (stall?.gen === gen) {
        if (stall.armed && roleChange) {
          stall.armed = false;
          this.log(`admin link to ${id} stalled, a role change held in it`);
        }
        if (!stall.armed) await stall.held;
      }
      if (id === null || this.adminCut.has(id))
        throw new UnavailableError(`sim: ${address} unreachable`);
      const n = this.nodes[id];
      if (n === null) throw new UnavailableError(`sim: ${id} down`);
      if (this.generation[id] !== nodeProcess) {
        throw new UnavailableError(`sim: ${id} restarted: the connection was reset`);
      }
      const result = await fn(n);
      await this.delay();
      if (this.adminCut.has(id)) throw new UnavailableError(`sim: ${address} unreachable`);
      return result;
    };
    return this.withDeadline(call(), deadlineMs, `call to ${id ?? address}`);
  }

  private admin(gen: number): NodeAdmin {
    return {
      status: (address) =>
        this.toNode(gen, address, (n) => Promise.resolve(report(n)), probeCallMs),
      fence: (address, ballot) =>
        this.toNode(gen, address, (n) => fenceOnce(n, ballot), roleChangeCallMs, true),
      promote: (address, epoch, standby, call: PromoteCall) =>
        this.toNode(
          gen,
          address,
          async (n) => {
            await n.promote(epoch, {
              standby,
              aloneApproved: call.aloneApproved,
              force: call.skipAhead > 0,
              skipAhead: call.skipAhead,
              ballot: call.ballot,
            });
            this.log(`${idOf(address) ?? address} promoted to epoch ${epoch}`);
            this.checkEpochOwners();
          },
          roleChangeCallMs,
          true,
        ),
      stepDown: (address, epoch) =>
        this.toNode(gen, address, (n) => n.stepDown(epoch), roleChangeCallMs, true),
      refusesConnections: async (address) => {
        const id = idOf(address);
        await this.delay();
        return id !== null && !this.adminCut.has(id) && this.isDown(id);
      },
      onConnectionLost: (lost) => this.lostListeners.push(lost),
    };
  }

  /** A call from node `id` (its process `gen`) to the controller. */
  private async toController<T>(
    id: NodeId,
    gen: number,
    fn: (c: Controller) => Promise<T>,
  ): Promise<T> {
    await this.delay();
    if (gen !== this.generation[id]) throw new UnavailableError('sim: the calling node is gone');
    const c = this.controller;
    if (c === null || this.adminCut.has(id))
      throw new UnavailableError('sim: controller unreachable');
    const result = await this.withDeadline(fn(c), controllerCallMs, 'call to the controller');
    await this.delay();
    return result;
  }

  private authority(id: NodeId, gen: number): InSyncAuthority {
    return {
      removeFromInSync: async (r) =>
        void (await this.toController(id, gen, (c) => c.removeFromInSync(toChange(r)))),
      addToInSync: async (r) =>
        void (await this.toController(id, gen, (c) => c.addToInSync(toChange(r)))),
    };
  }

  private async place(id: NodeId, gen: number, r: JoinReport): Promise<Placement> {
    for (;;) {
      if (gen !== this.generation[id]) throw new UnavailableError('sim: process gone');
      try {
        return await this.toController(id, gen, (c) => joinOnce(c, id, r));
      } catch (err) {
        if (!(err instanceof UnavailableError)) throw err;
        await sleep(this.clock, 50);
      }
    }
  }

  private nodeOptions(id: NodeId, gen: number): NodeOptions {
    return {
      id,
      dataDir,
      logger: silent,
      metrics: createMetrics({ defaults: false }),
      storage: this.disks[id],
      clock: this.clock,
      random: this.nodeRandom[id],
      lock: false,
      segmentSizeBytes: 4096,
      checkpointRecords: 50,
      place: (r) => this.place(id, gen, r),
      controller: this.authority(id, gen),
      degradeAfterMs: 200,
      dial: (target) => this.repl.dialer(target, () => this.accept(target)),
      advertiseAddress: refs[id].address,
      replicationAckTimeoutMs: 400,
      ackWaitMs: 5000,
    };
  }

  private accept(target: string) {
    return (channel: Parameters<CounterNode['openReplication']>[0], peer: string) => {
      const id = idOf(target);
      const node = id === null ? null : this.nodes[id];
      if (node === null) {
        return refuseReplication(channel, new UnavailableError('sim: connection refused'));
      }
      return node.openReplication(channel, peer);
    };
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.close();
    await this.controller?.stop().catch(() => undefined);
    for (const id of nodeIds) {
      this.generation[id]++;
      await this.nodes[id]?.close().catch(() => undefined);
      this.nodes[id] = null;
    }
    this.repl.stop();
  }
}
