/**
 * tally.v1.Controller over gRPC: the controller's server (configuration, placement of starting
 * nodes, in-sync approvals, switchover, forced promotion), plus health and reflection, on its
 * own port. The wire conversions live here too (the controller client uses them).
 */
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import { ballotOf, noBallot } from '../core/ballot';
import { InvalidArgumentError, UnavailableError } from '../core/errors';
import type { ClusterConfig, FailoverRecord, NodeRef } from '../controller/config-store';
import type { Controller, InSyncChange } from '../controller/controller';
import { noPosition, type NodeReport } from '../controller/members';
import type { ClusterConfig as WireConfig } from '../generated/tally/v1/ClusterConfig';
import type { ClusterConfig__Output } from '../generated/tally/v1/ClusterConfig';
import type { ControllerHandlers } from '../generated/tally/v1/Controller';
import type { InSyncChange__Output } from '../generated/tally/v1/InSyncChange';
import type { JoinRequest__Output } from '../generated/tally/v1/JoinRequest';
import type { Placement as WirePlacement } from '../generated/tally/v1/Placement';
import { parseHostPort } from './listen';
import { loadProtos } from './proto';
import { toGrpcError } from './status';

export const controllerServiceName = 'tally.v1.Controller';

/** A member as clients see it: also where clients reach it ('' until it answered a probe). */
export interface ClientNodeRef extends NodeRef {
  clientAddress: string;
}

/** The configuration as clients see it: the stored one, and why the cluster does not serve. */
export interface ClusterView extends ClusterConfig {
  primary: ClientNodeRef;
  standby: ClientNodeRef;
  blocked: string;
}

/** The address a client should dial for `ref`: its reported client address, else the controller's. */
export function clientAddressOf(ref: ClientNodeRef): string {
  return ref.clientAddress === '' ? ref.address : ref.clientAddress;
}

export function toWireConfig(
  c: ClusterConfig,
  blocked = '',
  clientAddress: (id: string) => string = () => '',
): WireConfig {
  return {
    version: c.version,
    epoch: c.epoch,
    primary: { ...c.primary, clientAddress: clientAddress(c.primary.id) },
    standby: { ...c.standby, clientAddress: clientAddress(c.standby.id) },
    inSync: c.inSync,
    lastFailover: c.lastFailover,
    promoting: c.promoting,
    clusterId: c.clusterId,
    members: c.members.map((m) => ({
      id: m.id,
      incarnation: m.incarnation,
      vouchedEpoch: m.vouched?.epoch ?? 0,
      vouchedIndex: m.vouched?.index ?? 0,
    })),
    blocked,
  };
}

function nodeRef(
  r: { id: string; address: string; clientAddress: string } | null,
  what: string,
): ClientNodeRef {
  if (r === null || r.id === '') throw new Error(`controller: configuration without a ${what}`);
  return { id: r.id, address: r.address, clientAddress: r.clientAddress };
}

const failoverKinds: ReadonlyArray<FailoverRecord['kind']> = ['failover', 'switchover', 'forced'];

export function fromWireConfig(w: ClusterConfig__Output): ClusterView {
  const f = w.lastFailover;
  return {
    version: Number(w.version),
    clusterId: w.clusterId,
    epoch: Number(w.epoch),
    epochSeen: Number(w.epoch),
    primary: nodeRef(w.primary, 'primary'),
    standby: nodeRef(w.standby, 'standby'),
    members: w.members.map((m) => ({
      id: m.id,
      incarnation: m.incarnation,
      vouched: w.inSync.includes(m.id)
        ? { epoch: Number(m.vouchedEpoch), index: Number(m.vouchedIndex) }
        : null,
    })),
    inSync: w.inSync,
    promoting: w.promoting,
    forceSkipAhead: 0,
    lastInSyncChange: null,
    blocked: w.blocked,
    lastFailover:
      f === null
        ? null
        : {
            atUnixMs: Number(f.atUnixMs),
            kind: failoverKinds.find((k) => k === f.kind) ?? 'failover',
            fromNode: f.fromNode,
            toNode: f.toNode,
            epoch: Number(f.epoch),
            durationMs: Number(f.durationMs),
            reason: f.reason,
          },
  };
}

function inSyncArgs(req: InSyncChange__Output): InSyncChange {
  const epoch = Number(req.epoch);
  if (req.primaryId === '' || !Number.isSafeInteger(epoch) || epoch < 1) {
    throw new InvalidArgumentError('controller: primary_id and an epoch >= 1 are required');
  }
  return {
    primaryId: req.primaryId,
    primaryIncarnation: req.primaryIncarnation,
    epoch,
    standbyId: req.standbyId,
    acknowledged: { epoch: Number(req.acknowledgedEpoch), index: Number(req.acknowledgedIndex) },
    seq: Number(req.seq),
  };
}

/** A starting node's report, as the controller judges it (it is not serving yet). */
function joinReport(req: JoinRequest__Output): NodeReport {
  if (req.nodeId === '' || req.incarnation === '') {
    throw new InvalidArgumentError('controller: Join needs node_id and incarnation');
  }
  return {
    role: req.role,
    state: 'starting',
    epoch: Number(req.epoch),
    epochPrimary: req.epochPrimary,
    incarnation: req.incarnation,
    clusterId: req.clusterId,
    lastIndex: Number(req.lastIndex),
    lastEpoch: Number(req.lastEpoch),
    catchingUp: req.catchingUp,
    acknowledged: noPosition,
    writeStallMs: 0,
    ballot: ballotOf(req.ballotN, req.ballotId) ?? noBallot,
  };
}

function createHandlers(controller: Controller, logger: Logger): ControllerHandlers {
  const answer = <T>(work: () => Promise<T>, callback: grpc.sendUnaryData<T>): void => {
    let pending: Promise<T>;
    try {
      pending = work();
    } catch (err) {
      callback(toGrpcError(err, logger));
      return;
    }
    pending.then(
      (r) => callback(null, r),
      (err: unknown) => callback(toGrpcError(err, logger)),
    );
  };
  const view = (c: ClusterConfig): WireConfig =>
    toWireConfig(c, controller.blocked, (id) => controller.clientAddress(id));
  return {
    GetConfig: (_call, callback) => {
      const c = controller.current;
      if (c === null) {
        const err = new UnavailableError(`controller: no configuration yet: ${controller.blocked}`);
        callback(toGrpcError(err, logger));
        return;
      }
      callback(null, view(c));
    },
    RemoveFromInSync: (call, callback) =>
      answer(
        async () => view(await controller.removeFromInSync(inSyncArgs(call.request))),
        callback,
      ),
    AddToInSync: (call, callback) =>
      answer(async () => view(await controller.addToInSync(inSyncArgs(call.request))), callback),
    Switchover: (_call, callback) =>
      answer(async () => view(await controller.switchover()), callback),
    ForcePromote: (call, callback) =>
      answer(async () => {
        const skipAhead = Number(call.request.skipAhead);
        return view(await controller.forcePromote(call.request.nodeId, skipAhead));
      }, callback),
    Join: (call, callback) =>
      answer(async (): Promise<WirePlacement> => {
        const { placement, config } = await controller.join(
          call.request.nodeId,
          joinReport(call.request),
        );
        return {
          role: placement.role,
          standby: placement.standby ?? null,
          aloneApproved: placement.aloneApproved,
          clusterId: placement.clusterId,
          catchingUp: placement.catchingUp,
          config: view(config),
          ballotN: placement.ballot?.n ?? 0,
          ballotId: placement.ballot?.id ?? '',
        };
      }, callback),
  };
}

export interface RunningControllerServer {
  port: number;
  shutdown(): Promise<void>;
}

export async function startControllerServer(opts: {
  controller: Controller;
  listen: string;
  logger: Logger;
}): Promise<RunningControllerServer> {
  parseHostPort(opts.listen);
  const logger = opts.logger.child({ module: 'server' });
  const { packageDefinition, tally } = loadProtos();
  const server = new grpc.Server();
  server.addService(tally.v1.Controller.service, createHandlers(opts.controller, logger));
  const health = new HealthImplementation({ '': 'SERVING', [controllerServiceName]: 'SERVING' });
  health.addToServer(server);
  new ReflectionService(packageDefinition, { services: [controllerServiceName] }).addToServer(
    server,
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(opts.listen, grpc.ServerCredentials.createInsecure(), (err, p) => {
      if (err === null) resolve(p);
      else reject(new Error(`server: cannot listen on ${opts.listen}: ${err.message}`));
    });
  }).catch((err: unknown) => {
    server.forceShutdown();
    throw err;
  });
  return {
    port,
    shutdown: () =>
      new Promise<void>((resolve) => {
        health.setStatus('', 'NOT_SERVING');
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
