/**
 * tally.v1.Controller over gRPC: the controller's server (configuration, in-sync approvals,
 * switchover), plus health and reflection, on its own port.
 */
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import { InvalidArgumentError } from '../core/errors';
import type { ClusterConfig, NodeRef } from '../controller/config-store';
import type { Controller } from '../controller/controller';
import type { ClusterConfig as WireConfig } from '../generated/tally/v1/ClusterConfig';
import type { ClusterConfig__Output } from '../generated/tally/v1/ClusterConfig';
import type { ControllerHandlers } from '../generated/tally/v1/Controller';
import type { InSyncChange__Output } from '../generated/tally/v1/InSyncChange';
import { parseHostPort } from './listen';
import { loadProtos } from './proto';
import { toGrpcError } from './status';

export const controllerServiceName = 'tally.v1.Controller';

export function toWireConfig(c: ClusterConfig): WireConfig {
  return {
    version: c.version,
    epoch: c.epoch,
    primary: c.primary,
    standby: c.standby,
    inSync: c.inSync,
    lastFailover: c.lastFailover,
    promoting: c.promoting,
  };
}

function nodeRef(r: { id: string; address: string } | null, what: string): NodeRef {
  if (r === null || r.id === '') throw new Error(`controller: configuration without a ${what}`);
  return { id: r.id, address: r.address };
}

export function fromWireConfig(w: ClusterConfig__Output): ClusterConfig {
  const f = w.lastFailover;
  return {
    version: Number(w.version),
    epoch: Number(w.epoch),
    primary: nodeRef(w.primary, 'primary'),
    standby: nodeRef(w.standby, 'standby'),
    inSync: w.inSync,
    promoting: w.promoting,
    lastFailover:
      f === null
        ? null
        : {
            atUnixMs: Number(f.atUnixMs),
            kind: f.kind === 'switchover' ? 'switchover' : 'failover',
            fromNode: f.fromNode,
            toNode: f.toNode,
            epoch: Number(f.epoch),
            durationMs: Number(f.durationMs),
            reason: f.reason,
          },
  };
}

function inSyncArgs(req: InSyncChange__Output): [string, number, string] {
  const epoch = Number(req.epoch);
  if (req.primaryId === '' || !Number.isSafeInteger(epoch) || epoch < 1) {
    throw new InvalidArgumentError('controller: primary_id and an epoch >= 1 are required');
  }
  return [req.primaryId, epoch, req.standbyId];
}

function createHandlers(controller: Controller, logger: Logger): ControllerHandlers {
  const answer = (
    work: () => Promise<ClusterConfig>,
    callback: grpc.sendUnaryData<WireConfig>,
  ): void => {
    let pending: Promise<ClusterConfig>;
    try {
      pending = work();
    } catch (err) {
      callback(toGrpcError(err, logger));
      return;
    }
    pending.then(
      (c) => callback(null, toWireConfig(c)),
      (err: unknown) => callback(toGrpcError(err, logger)),
    );
  };
  return {
    GetConfig: (_call, callback) => callback(null, toWireConfig(controller.current)),
    RemoveFromInSync: (call, callback) =>
      answer(() => controller.removeFromInSync(...inSyncArgs(call.request)), callback),
    AddToInSync: (call, callback) =>
      answer(() => controller.addToInSync(...inSyncArgs(call.request)), callback),
    Switchover: (_call, callback) => answer(() => controller.switchover(), callback),
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
