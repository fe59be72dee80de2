/**
 * What the gRPC layer converts between a node and the controller, for in-process clusters (the
 * cluster harness and the simulator): a node's join report and its placement, its in-sync
 * requests, and the Status report the controller probes.
 */
import type { Ballot } from '../core/ballot';
import type { Controller, InSyncChange } from '../controller/controller';
import type { NodeReport } from '../controller/members';
import type { CounterNode, InSyncRequest, JoinReport, Placement } from '../node/types';

/** Asks `controller` where node `id` goes, given what it holds (one Join). */
export async function joinOnce(
  controller: Controller,
  id: string,
  r: JoinReport,
): Promise<Placement> {
  const { placement } = await controller.join(id, {
    role: r.role,
    state: 'starting',
    epoch: r.epoch,
    epochPrimary: r.epochPrimary,
    incarnation: r.incarnation,
    clusterId: r.clusterId,
    lastIndex: r.lastIndex,
    lastEpoch: r.lastEpoch,
    catchingUp: r.catchingUp,
    acknowledged: { epoch: 0, index: 0 },
    writeStallMs: 0,
    ballot: r.ballot,
  });
  return {
    role: placement.role,
    standby: placement.standby?.address,
    standbyId: placement.standby?.id,
    aloneApproved: placement.aloneApproved,
    clusterId: placement.clusterId,
    catchingUp: placement.catchingUp,
    ballot: placement.ballot,
  };
}

/** The node's Admin.Fence: stores the ballot, then reports (as the probe does). */
export async function fenceOnce(n: CounterNode, ballot: Ballot): Promise<NodeReport> {
  await n.storeBallot(ballot);
  return report(n);
}

/** A node's in-sync request as the controller takes it. */
export function toChange(r: InSyncRequest): InSyncChange {
  return {
    primaryId: r.primaryId,
    primaryIncarnation: r.primaryIncarnation,
    epoch: r.epoch,
    standbyId: r.standbyId,
    acknowledged: { epoch: r.acknowledgedEpoch, index: r.acknowledgedIndex },
    seq: r.seq,
  };
}

/** What the controller's probe of `n` reports. */
export function report(n: CounterNode): NodeReport {
  const s = n.status();
  return {
    role: s.role,
    state: s.state,
    epoch: s.epoch,
    epochPrimary: s.epochPrimary,
    lastIndex: s.lastIndex,
    catchingUp: s.replication?.catchingUp ?? false,
    incarnation: s.incarnation,
    clusterId: s.clusterId,
    lastEpoch: s.lastEpoch,
    acknowledged: { epoch: s.acknowledgedEpoch, index: s.acknowledgedIndex },
    writeStallMs: s.writeStallMs,
    promotingEpoch: s.promotingEpoch,
    ballot: s.ballot,
    streamFromPrimary: s.role === 'standby' ? s.replication?.state === 'connected' : undefined,
  };
}
