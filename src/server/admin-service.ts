/**
 * tally.v1.Admin: Status, Checkpoint, Promote, StepDown and Fence. Not on the hot path; errors go through the same
 * status table as allocations.
 */
import type { Logger } from 'pino';
import { ballotOf } from '../core/ballot';
import type { CounterNode, NodeStatus } from '../node/types';
import type { AdminHandlers } from '../generated/tally/v1/Admin';
import type { StatusResponse } from '../generated/tally/v1/StatusResponse';
import { InvalidArgumentError } from '../core/errors';
import { parseHostPort } from './listen';
import { toGrpcError } from './status';
import { packageVersion } from './version';

export function toStatusResponse(status: NodeStatus, version: string): StatusResponse {
  return {
    nodeId: status.nodeId,
    role: status.role,
    epoch: status.epoch,
    lastIndex: status.lastIndex,
    namespaces: status.namespaces.map((ns) => ({ name: ns.name, lastId: ns.lastId })),
    walBytes: status.walBytes,
    walSegments: status.walSegments,
    checkpointIndex: status.checkpointIndex,
    checkpointUnixMs: status.checkpointUnixMs,
    state: status.state,
    version,
    dataDir: status.dataDir,
    epochPrimary: status.epochPrimary,
    replication: status.replication,
    incarnation: status.incarnation,
    clusterId: status.clusterId,
    lastEpoch: status.lastEpoch,
    acknowledgedIndex: status.acknowledgedIndex,
    acknowledgedEpoch: status.acknowledgedEpoch,
    writeStallMs: status.writeStallMs,
    clientAddress: status.clientAddress,
    promotingEpoch: status.promotingEpoch,
    tailCut: status.tailCut,
    ballotN: status.ballot.n,
    ballotId: status.ballot.id,
    idFloor: status.idFloor,
  };
}

function nodeIdOf(node: CounterNode): string {
  try {
    return node.status().nodeId;
  } catch {
    return '';
  }
}

export function createAdminHandlers(node: CounterNode, logger: Logger): AdminHandlers {
  const version = packageVersion();
  return {
    Status: (_call, callback) => {
      let status: NodeStatus;
      try {
        status = node.status();
      } catch (err) {
        callback(toGrpcError(err, logger));
        return;
      }
      callback(null, toStatusResponse(status, version));
    },
    Checkpoint: (_call, callback) => {
      node.checkpoint().then(
        (info) =>
          callback(null, {
            index: info.index,
            segmentsRemoved: info.segmentsRemoved,
            durationUs: info.durationUs,
            scheduled: info.scheduled === true,
            acknowledgedIndex: info.acknowledgedIndex ?? 0,
            nodeId: nodeIdOf(node),
          }),
        (err: unknown) => callback(toGrpcError(err, logger)),
      );
    },
    Promote: (call, callback) => {
      const epoch = Number(call.request.epoch);
      if (!Number.isSafeInteger(epoch) || epoch < 1) {
        callback(
          toGrpcError(new InvalidArgumentError('admin: promote needs an epoch >= 1'), logger),
        );
        return;
      }
      const standby = call.request.standby === '' ? undefined : call.request.standby;
      if (standby !== undefined) {
        try {
          parseHostPort(standby);
        } catch (err) {
          const message = `admin: standby ${(err as Error).message}`;
          callback(toGrpcError(new InvalidArgumentError(message), logger));
          return;
        }
      }
      const skipAhead = Number(call.request.skipAhead);
      if (!Number.isSafeInteger(skipAhead) || skipAhead < 0) {
        callback(toGrpcError(new InvalidArgumentError('admin: skip_ahead invalid'), logger));
        return;
      }
      const ballot = ballotOf(call.request.ballotN, call.request.ballotId);
      if (ballot === null) {
        callback(toGrpcError(new InvalidArgumentError('admin: ballot invalid'), logger));
        return;
      }
      const options = {
        standby,
        aloneApproved: call.request.aloneApproved,
        force: call.request.force,
        skipAhead,
        ballot: ballot.n === 0 ? undefined : ballot,
      };
      node.promote(epoch, options).then(
        (r) => callback(null, { epoch: r.epoch, role: r.role, lastIndex: r.lastIndex }),
        (err: unknown) => callback(toGrpcError(err, logger)),
      );
    },
    Fence: (call, callback) => {
      const ballot = ballotOf(call.request.ballotN, call.request.ballotId);
      if (ballot === null || ballot.n === 0 || ballot.id === '') {
        callback(toGrpcError(new InvalidArgumentError('admin: fence needs a ballot'), logger));
        return;
      }
      node.storeBallot(ballot).then(
        () => callback(null, toStatusResponse(node.status(), version)),
        (err: unknown) => callback(toGrpcError(err, logger)),
      );
    },
    StepDown: (call, callback) => {
      const epoch = Number(call.request.epoch);
      if (!Number.isSafeInteger(epoch) || epoch < 0) {
        callback(toGrpcError(new InvalidArgumentError('admin: step-down epoch invalid'), logger));
        return;
      }
      node.stepDown(epoch).then(
        (r) => callback(null, { epoch: r.epoch, lastIndex: r.lastIndex }),
        (err: unknown) => callback(toGrpcError(err, logger)),
      );
    },
  };
}
