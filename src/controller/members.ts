/**
 * What the controller knows of a node, and the judgements it makes from it: does this data
 * directory hold the history the controller vouches for, is this node serving as primary, may
 * this standby be promoted. Pure functions: the controller (controller.ts) acts on them.
 */
import type { Ballot } from '../core/ballot';
import { shortId } from '../core/ids';
import type { MemberRecord, Position } from './config-store';
import { planted } from '../core/planted-bugs';

/** A node as it reports itself: Admin.Status while it runs, Join when it starts. */
export interface NodeReport {
  /** primary, standby or standalone (the role stored in its meta). */
  role: string;
  /** starting, serving, fenced, draining, failed. */
  state: string;
  /** The highest epoch it accepted, and that epoch's primary. */
  epoch: number;
  epochPrimary: string;
  /** Its data directory's identity, and the cluster it joined ('' for none). */
  incarnation: string;
  clusterId: string;
  /** Index and epoch of the last record in its log. */
  lastIndex: number;
  lastEpoch: number;
  /** Standby: not yet at a primary's tail since it was new, wiped or rejoined. */
  catchingUp: boolean;
  /** Primary: the last record acknowledged to clients. */
  acknowledged: Position;
  /** How long its local write in progress has run (0: none). */
  writeStallMs: number;
  /** Where clients reach it ('' when it does not say). */
  clientAddress?: string;
  /**
   * Standby: a replication stream from a primary is open (undefined: not reported). A primary
   * that died closed it: the standby saw the reset.
   */
  streamFromPrimary?: boolean;
  /** A promotion to this epoch is in progress on the node (0 or undefined: none). */
  promotingEpoch?: number;
  /** The highest controller ballot the node stored (undefined: not reported). */
  ballot?: Ballot;
}

export const noPosition: Position = { epoch: 0, index: 0 };

/** Positions are ordered by epoch, then index (a later epoch holds everything acknowledged before it). */
export function comparePositions(a: Position, b: Position): number {
  return a.epoch !== b.epoch ? a.epoch - b.epoch : a.index - b.index;
}

export function lastPosition(report: NodeReport): Position {
  return { epoch: report.lastEpoch, index: report.lastIndex };
}

export function formatPosition(p: Position | null): string {
  return p === null ? '-' : `${p.index}@${p.epoch}`;
}

/**
 * Does the log the node reports hold the record at `position`? Its last record must be at or
 * past it: in a later epoch (whose primary held every record acknowledged before it began),
 * or in the same epoch at a later index.
 */
export function holds(report: NodeReport, position: Position | null): boolean {
  return position === null || comparePositions(lastPosition(report), position) >= 0;
}

/**
 * Why the node is not the member the controller recorded (null when it is): another data
 * directory (new, wiped, replaced), or an in-sync member whose log ends before what the
 * controller knows was acknowledged (an old copy of its directory).
 */
export function memberProblem(
  member: MemberRecord,
  report: NodeReport,
  inSync: boolean,
): string | null {
  if (
    member.incarnation !== '' &&
    report.incarnation !== member.incarnation &&
    !planted('skip-incarnation-check')
  ) {
    return `runs on a new data directory (incarnation ${shortId(report.incarnation)}; the controller knew ${shortId(member.incarnation)})`;
  }
  if (inSync && !holds(report, member.vouched)) {
    return `its log ends at ${formatPosition(lastPosition(report))}, before ${formatPosition(member.vouched)}, which was acknowledged (an old copy of its data directory?)`;
  }
  return null;
}

/** Why the configured primary is not serving as primary (null when it is). */
export function primaryProblem(
  report: NodeReport | null,
  member: MemberRecord,
  stallLimitMs: number,
): string | null {
  if (report === null) return 'unreachable';
  if (member.incarnation !== '' && report.incarnation !== member.incarnation) {
    return 'runs on a data directory the controller does not know';
  }
  if (report.role !== 'primary' || report.state !== 'serving') {
    return `is ${report.role} (${report.state}), not a serving primary`;
  }
  if (report.writeStallMs > stallLimitMs) {
    return `has had a disk write in progress for ${report.writeStallMs} ms`;
  }
  return null;
}

/**
 * Why a standby may not be promoted now (null when it may): it must be reachable, in the
 * in-sync set, the directory the controller knows, holding what it vouches for, caught up.
 */
export function promotionProblem(
  report: NodeReport | null,
  member: MemberRecord,
  inSync: boolean,
  clusterId: string,
): string | null {
  if (!inSync) return 'not in the in-sync set';
  if (report === null) return 'unreachable';
  if (report.clusterId !== '' && report.clusterId !== clusterId) return 'of another cluster';
  const problem = memberProblem(member, report, true);
  if (problem !== null) return problem;
  if (report.role !== 'standby' || report.state !== 'serving') {
    return `is ${report.role} (${report.state}), not a serving standby`;
  }
  if (report.catchingUp) return 'still catching up';
  return null;
}

/** An empty data directory that joined no cluster: a brand-new member. */
export function isEmpty(report: NodeReport): boolean {
  return report.lastIndex === 0 && report.epoch === 0 && report.clusterId === '';
}
