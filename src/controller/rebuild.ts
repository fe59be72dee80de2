/**
 * A controller without a stored configuration builds one only from what the nodes prove.
 *
 *   - Both members report empty directories: a brand-new cluster (first --node primary, both
 *     in sync, a new cluster id).
 *   - Otherwise the history is held by the owner of the highest epoch either node has
 *     accepted, if that node's own directory says it began that epoch (it then holds every
 *     record acknowledged up to its start, and acknowledged the rest itself): it is primary,
 *     the only member in sync; the other catches up and is added back, verified.
 *   - A member reports a promotion still under way (begun by an earlier controller, on a slow
 *     disk): wait until it is done and its report shows the epoch it leads.
 *   - Nothing proven (a member has not reported, the owner of the highest epoch does not hold
 *     it, or the other member's directory is empty: it may have been wiped after holding a later
 *     history): no configuration; the controller waits and says why. An operator who knows
 *     better bootstraps explicitly (--bootstrap: the first --node holds the history).
 */
import { systemRandom, type Random } from '../core/clock';
import { randomId, shortId } from '../core/ids';
import type { ClusterConfig, MemberRecord, NodeRef } from './config-store';
import {
  comparePositions,
  formatPosition,
  isEmpty,
  lastPosition,
  type NodeReport,
} from './members';

/** A configuration, or why there is none yet (`pending`: only a member's report is missing). */
export type BuildResult =
  { config: ClusterConfig; why: string } | { waiting: string; pending?: boolean };

function baseConfig(
  clusterId: string,
  primary: NodeRef,
  standby: NodeRef,
  members: MemberRecord[],
  epoch: number,
): ClusterConfig {
  return {
    version: 1,
    clusterId,
    epoch,
    epochSeen: epoch,
    primary,
    standby,
    members,
    inSync: members.filter((m) => m.vouched !== null).map((m) => m.id),
    lastFailover: null,
    promoting: false,
    forceSkipAhead: 0,
    lastInSyncChange: null,
  };
}

/** The cluster id the members carry, or a new one; null when they carry different ones. */
function clusterIdOf(reports: NodeReport[], random: Random): string | null {
  const ids = new Set(reports.map((r) => r.clusterId).filter((id) => id !== ''));
  if (ids.size > 1) return null;
  return [...ids][0] ?? randomId(random);
}

/** --bootstrap: the first node's log is the history (the operator says so). */
function bootstrap(
  nodes: [NodeRef, NodeRef],
  first: NodeReport | undefined,
  random: Random,
): BuildResult {
  const [p, s] = nodes;
  if (first === undefined) {
    return { waiting: `--bootstrap: waiting for ${p.id} to report`, pending: true };
  }
  return {
    config: baseConfig(
      first.clusterId || randomId(random),
      p,
      s,
      [
        { id: p.id, incarnation: first.incarnation, vouched: lastPosition(first) },
        { id: s.id, incarnation: '', vouched: null },
      ],
      first.epoch,
    ),
    why: `bootstrap: ${p.id} holds the history (operator)`,
  };
}

interface Claim {
  ref: NodeRef;
  report: NodeReport;
  other: NodeRef;
  otherReport: NodeReport;
}

/**
 * The member whose directory proves it holds the history: it began the highest epoch any
 * member began, no member holds records of a later epoch, and the other member's log goes no
 * further than its own (else it may be an old copy). An epoch accepted but never written
 * (its primary crashed before persisting it) proves nothing either way.
 */
function historyOwner(claims: Claim[]): Claim | string {
  const began = claims.filter((c) => c.report.epochPrimary === c.ref.id && c.report.epoch > 0);
  if (began.length === 0) return 'no member began the epoch it holds';
  const owner = began.reduce((x, y) => (y.report.epoch > x.report.epoch ? y : x));
  const later = claims.find((c) => c.report.lastEpoch > owner.report.epoch);
  if (later !== undefined) {
    return `${later.ref.id} holds records of epoch ${later.report.lastEpoch}, which no member proves it began`;
  }
  if (isEmpty(owner.otherReport)) {
    // A new or wiped directory may be all that is left of a later history: the other member
    // may have gone on alone in an epoch this controller knew of before it lost its disk.
    // Found by the simulator (seed 178): b, alone in sync in epoch 2, lost its disk, the
    // controller lost its own, and a rebuilt cluster served from a's epoch-1 log: IDs again.
    return `${owner.other.id}'s directory is empty (new or wiped): it may have held a later history than ${owner.ref.id}'s`;
  }
  if (comparePositions(lastPosition(owner.otherReport), lastPosition(owner.report)) > 0) {
    return `${owner.other.id}'s log goes further than ${owner.ref.id}'s (${formatPosition(lastPosition(owner.otherReport))} against ${formatPosition(lastPosition(owner.report))}): ${owner.ref.id}'s directory may be an old copy`;
  }
  return owner;
}

export function buildConfig(
  nodes: [NodeRef, NodeRef],
  reports: ReadonlyMap<string, NodeReport>,
  explicitBootstrap: boolean,
  /** Where a new cluster id comes from. */
  random: Random = systemRandom,
): BuildResult {
  // A promotion an earlier controller began (this one lost its configuration) still runs, e.g.
  // on a slow disk: the node is about to lead an epoch its report does not show yet. Built now
  // (or bootstrapped by an operator), the configuration would place the other node as primary
  // beside it (simulator seed 23799: both served epoch 2, each approved to acknowledge alone).
  // A node that failed (its promotion's meta write may or may not be on disk) reports again
  // once restarted.
  const unsettled = nodes.flatMap((n) => {
    const r = reports.get(n.id);
    if (r === undefined) return [];
    if ((r.promotingEpoch ?? 0) > 0)
      return [
        `the promotion of ${n.id} to epoch ${r.promotingEpoch} (begun by an earlier controller) to finish`,
      ];
    return r.state === 'failed' ? [`${n.id}, which failed, to restart`] : [];
  });
  if (unsettled.length > 0) {
    return {
      waiting: `no stored configuration: waiting for ${unsettled.join(' and ')}`,
      pending: true,
    };
  }
  if (explicitBootstrap) return bootstrap(nodes, reports.get(nodes[0].id), random);
  const missing = nodes.filter((n) => !reports.has(n.id)).map((n) => n.id);
  if (missing.length > 0) {
    return {
      waiting: `no stored configuration: waiting for ${missing.join(' and ')} to report what ${missing.length > 1 ? 'they hold' : 'it holds'}`,
      pending: true,
    };
  }
  const [r0, r1] = nodes.map((n) => reports.get(n.id) as NodeReport) as [NodeReport, NodeReport];
  const clusterId = clusterIdOf([r0, r1], random);
  if (clusterId === null) {
    return {
      waiting: `the members belong to different clusters (${shortId(r0.clusterId)}, ${shortId(r1.clusterId)})`,
    };
  }
  const [p, s] = nodes;
  if (isEmpty(r0) && isEmpty(r1)) {
    const members = [
      { id: p.id, incarnation: r0.incarnation, vouched: { epoch: 0, index: 0 } },
      { id: s.id, incarnation: r1.incarnation, vouched: { epoch: 0, index: 0 } },
    ];
    return { config: baseConfig(clusterId, p, s, members, 0), why: 'new cluster' };
  }
  const owner = historyOwner([
    { ref: p, report: r0, other: s, otherReport: r1 },
    { ref: s, report: r1, other: p, otherReport: r0 },
  ]);
  if (typeof owner === 'string') {
    return {
      waiting: `no member proves it holds the history: ${owner}; if you know which node does, restart the controller with --bootstrap and that node as the first --node`,
    };
  }
  const epoch = owner.report.epoch;
  const members = [
    {
      id: owner.ref.id,
      incarnation: owner.report.incarnation,
      vouched: lastPosition(owner.report),
    },
    { id: owner.other.id, incarnation: owner.otherReport.incarnation, vouched: null },
  ];
  return {
    config: baseConfig(clusterId, owner.ref, owner.other, members, epoch),
    why: `rebuilt from the nodes: ${owner.ref.id} began epoch ${epoch} and holds the history`,
  };
}
