/** What a chaos run is asked to do, and what its recovery looked like (runner.ts, report.ts). */
import type { FaultKind } from './schedule';

export interface RunOptions {
  durationSec: number;
  seed: number;
  historyPath: string;
  kinds: FaultKind[];
  requireAll: boolean;
  recoveryTimeoutSec: number;
  minFaults: number;
  clients: number;
  loopsPerClient: number;
  namespaces: number;
  ratePerSec: number;
  deadlineMs: number;
  /** Tests only: append a copy of an acknowledged operation to the history (a duplicate). */
  plantDuplicate: boolean;
  /** A node that stops on ENOSPC while its disk is full fails the run too. */
  strictExits: boolean;
  /** Print each fault as it is applied. */
  verbose: boolean;
}

export interface Recovery {
  recovered: boolean;
  /** ms from the heal to the first ok answer, and to both nodes in sync. */
  servingAfterMs: number | null;
  inSyncAfterMs: number | null;
  why: string;
}
