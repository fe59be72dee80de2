/**
 * gRPC clients around the controller: ControllerClient (what nodes and the CLI call on the
 * controller) and GrpcNodeAdmin (what the controller calls on the nodes). Every call has a
 * deadline; a gRPC failure becomes the typed error the caller acts on.
 */
import * as grpc from '@grpc/grpc-js';
import { ballotOf, noBallot, wireBallot, type Ballot } from '../core/ballot';
import {
  CounterExhaustedError,
  DataDirError,
  InvalidArgumentError,
  NotPrimaryError,
  StaleEpochError,
  SwitchoverFailedError,
  UnavailableError,
  WrongRoleError,
  type TallyError,
} from '../core/errors';
import type { NodeAdmin, PromoteCall } from '../controller/controller';
import type { NodeReport } from '../controller/members';
import type { InSyncAuthority, InSyncRequest, JoinReport, Placement } from '../node/types';
import type { Placement__Output } from '../generated/tally/v1/Placement';
import type { AdminClient } from '../generated/tally/v1/Admin';
import type { ClusterConfig__Output } from '../generated/tally/v1/ClusterConfig';
import type { ControllerClient as WireControllerClient } from '../generated/tally/v1/Controller';
import type { StatusResponse__Output } from '../generated/tally/v1/StatusResponse';
import type { StepDownResponse__Output } from '../generated/tally/v1/StepDownResponse';
import { fromWireConfig, type ClusterView } from './controller-service';
import { probeTcp } from './listen';
import { loadProtos } from './proto';
import { errorNameKey } from './status';
import { controllerCallMs, probeCallMs, roleChangeCallMs } from '../core/limits';

/**
 * How long a fresh TCP connect may take before it proves nothing: a refusal comes back within
 * a round trip; a paused process's kernel accepts, and a cut link is silent.
 */
const refusalCheckMs = 250;
/** Connectivity watches are renewed this often (grpc-js wants a deadline). */
const watchRenewMs = 3_600_000;
/** A switchover may wait for a target that does not serve, then hand back: longer still. */
const switchoverCallMs = 30_000;

/**
 * Reconnect fast: a node restarting on the same address must be seen within a probe or two,
 * or the controller counts it unreachable for longer than it is.
 */
const channelOptions: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 200,
};

let protos: ReturnType<typeof loadProtos> | null = null;
function tally(): ReturnType<typeof loadProtos>['tally'] {
  protos ??= loadProtos();
  return protos.tally;
}

function deadline(ms: number): grpc.CallOptions {
  return { deadline: Date.now() + ms };
}

const errorsByName: Record<string, new (message: string) => TallyError> = {
  NotPrimaryError,
  StaleEpochError,
  WrongRoleError,
  UnavailableError,
  InvalidArgumentError,
  DataDirError,
  SwitchoverFailedError,
  CounterExhaustedError,
};

/**
 * A failed call as the typed error its caller acts on: the class the server raised (it sends
 * the name in `tally-error`), else UNAVAILABLE for a call that did not get through and
 * WrongRoleError for any other refusal — never NotPrimaryError by guess, since a primary
 * that gets NotPrimaryError from the controller steps down.
 */
function typed(err: grpc.ServiceError, what: string): TallyError {
  const message = `${what}: ${err.details || err.message}`;
  const name = err.metadata?.get(errorNameKey)[0];
  const Known = typeof name === 'string' ? errorsByName[name] : undefined;
  if (Known) return new Known(message);
  if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
    return new UnavailableError(message);
  }
  return new WrongRoleError(message);
}

function unary<Req, Res>(
  call: (
    req: Req,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: Res) => void,
  ) => unknown,
  req: Req,
  ms: number,
  what: string,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    call(req, deadline(ms), (err, res) => {
      if (err) reject(typed(err, what));
      else resolve(res as Res);
    });
  });
}

/** The controller as nodes and the CLI see it. */
export class ControllerClient implements InSyncAuthority {
  private readonly client: WireControllerClient;

  constructor(readonly address: string) {
    this.client = new (tally().v1.Controller)(
      address,
      grpc.credentials.createInsecure(),
      channelOptions,
    );
  }

  async getConfig(ms = controllerCallMs): Promise<ClusterView> {
    const res = await unary<object, ClusterConfig__Output>(
      (r, o, cb) => this.client.GetConfig(r, o, cb),
      {},
      ms,
      `controller ${this.address}`,
    );
    return fromWireConfig(res);
  }

  async removeFromInSync(req: InSyncRequest): Promise<void> {
    await unary(
      (r, o, cb) => this.client.RemoveFromInSync(r, o, cb),
      req,
      controllerCallMs,
      `controller ${this.address}`,
    );
  }

  async addToInSync(req: InSyncRequest): Promise<void> {
    await unary(
      (r, o, cb) => this.client.AddToInSync(r, o, cb),
      req,
      controllerCallMs,
      `controller ${this.address}`,
    );
  }

  /** A starting node: what it holds → where the controller puts it. */
  async join(report: JoinReport): Promise<Placement> {
    const ballot = report.ballot ?? noBallot;
    const res = await unary<object, Placement__Output>(
      (r, o, cb) => this.client.Join(r, o, cb),
      { ...report, ballot: undefined, ballotN: ballot.n, ballotId: ballot.id },
      controllerCallMs,
      `controller ${this.address}`,
    );
    const role = res.role === 'primary' ? 'primary' : 'standby';
    return {
      role,
      standby: res.standby?.address,
      standbyId: res.standby?.id,
      aloneApproved: res.aloneApproved,
      clusterId: res.clusterId,
      catchingUp: res.catchingUp,
      ballot: wireBallot(res.ballotN, res.ballotId),
    };
  }

  async switchover(): Promise<ClusterView> {
    const res = await unary<object, ClusterConfig__Output>(
      (r, o, cb) => this.client.Switchover(r, o, cb),
      {},
      switchoverCallMs,
      `controller ${this.address}`,
    );
    return fromWireConfig(res);
  }

  async forcePromote(nodeId: string, skipAhead: number): Promise<ClusterView> {
    const res = await unary<object, ClusterConfig__Output>(
      (r, o, cb) => this.client.ForcePromote(r, o, cb),
      { nodeId, skipAhead },
      switchoverCallMs,
      `controller ${this.address}`,
    );
    return fromWireConfig(res);
  }

  close(): void {
    this.client.close();
  }
}

/**
 * Is nothing listening at `address`? A fresh TCP connection refused (ECONNREFUSED: the host
 * answered with a reset) says the port is closed: the process that held it is gone, or closed
 * its server. Accepted, silent (a cut link) or any other failure: false, it proves nothing. A
 * paused process's kernel still accepts connections on its listening socket.
 */
export function refusesConnections(address: string, timeoutMs = refusalCheckMs): Promise<boolean> {
  return probeTcp(address, timeoutMs, false, (socket, settle) => {
    socket.once('connect', () => settle(false));
    socket.once('error', (err: NodeJS.ErrnoException) => settle(err.code === 'ECONNREFUSED'));
  });
}

/** A node's Admin.Status as the controller takes it. */
function reportOf(s: StatusResponse__Output): NodeReport {
  return {
    role: s.role,
    state: s.state,
    epoch: Number(s.epoch),
    epochPrimary: s.epochPrimary,
    lastIndex: Number(s.lastIndex),
    catchingUp: s.replication?.catchingUp ?? false,
    incarnation: s.incarnation,
    clusterId: s.clusterId,
    lastEpoch: Number(s.lastEpoch),
    acknowledged: { epoch: Number(s.acknowledgedEpoch), index: Number(s.acknowledgedIndex) },
    writeStallMs: Number(s.writeStallMs),
    clientAddress: s.clientAddress,
    promotingEpoch: Number(s.promotingEpoch),
    streamFromPrimary: s.role === 'standby' ? s.replication?.state === 'connected' : undefined,
    ballot: ballotOf(s.ballotN, s.ballotId) ?? noBallot,
  };
}

/** The nodes' Admin service as the controller calls it (one channel per address). */
export class GrpcNodeAdmin implements NodeAdmin {
  private readonly clients = new Map<string, AdminClient>();
  private lost: ((address: string) => void) | null = null;

  private admin(address: string): AdminClient {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new (tally().v1.Admin)(address, grpc.credentials.createInsecure(), channelOptions);
      this.clients.set(address, client);
      this.watch(address, client.getChannel());
    }
    return client;
  }

  /**
   * Reports every drop of an open connection to `address` (READY → anything else): a process
   * that dies closes its sockets, so the controller hears of a crash at once instead of at its
   * next probe. A paused process or a cut link drops nothing: that is left to the probes.
   */
  private watch(address: string, channel: ReturnType<AdminClient['getChannel']>): void {
    const from = channel.getConnectivityState(false);
    if (from === grpc.connectivityState.SHUTDOWN) return;
    channel.watchConnectivityState(from, Date.now() + watchRenewMs, () => {
      const to = channel.getConnectivityState(false);
      if (from === grpc.connectivityState.READY && to !== grpc.connectivityState.READY) {
        this.lost?.(address);
      }
      this.watch(address, channel);
    });
  }

  onConnectionLost(lost: (address: string) => void): void {
    this.lost = lost;
  }

  refusesConnections(address: string): Promise<boolean> {
    return refusesConnections(address);
  }

  async status(address: string): Promise<NodeReport> {
    const admin = this.admin(address);
    const s = await unary<object, StatusResponse__Output>(
      (r, o, cb) => admin.Status(r, o, cb),
      {},
      probeCallMs,
      `node ${address}`,
    );
    return reportOf(s);
  }

  async fence(address: string, ballot: Ballot): Promise<NodeReport> {
    const admin = this.admin(address);
    const s = await unary<object, StatusResponse__Output>(
      (r, o, cb) => admin.Fence(r, o, cb),
      { ballotN: ballot.n, ballotId: ballot.id },
      roleChangeCallMs,
      `node ${address}`,
    );
    return reportOf(s);
  }

  async promote(address: string, epoch: number, standby: string, call: PromoteCall): Promise<void> {
    const admin = this.admin(address);
    const { aloneApproved, skipAhead } = call;
    const ballot = call.ballot ?? noBallot;
    await unary(
      (r, o, cb) => admin.Promote(r, o, cb),
      {
        epoch,
        standby,
        aloneApproved,
        force: skipAhead > 0,
        skipAhead,
        ballotN: ballot.n,
        ballotId: ballot.id,
      },
      roleChangeCallMs,
      `node ${address}`,
    );
  }

  async stepDown(address: string, epoch: number): Promise<{ epoch: number; lastIndex: number }> {
    const admin = this.admin(address);
    const r = await unary<object, StepDownResponse__Output>(
      (q, o, cb) => admin.StepDown(q, o, cb),
      { epoch },
      roleChangeCallMs,
      `node ${address}`,
    );
    return { epoch: Number(r.epoch), lastIndex: Number(r.lastIndex) };
  }

  close(): void {
    this.lost = null;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
