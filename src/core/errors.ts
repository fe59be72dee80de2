/**
 * One class per failure. Every operating error that can reach a caller is a TallyError
 * subclass; the server maps `kind` to a gRPC status in one table (src/server/status.ts).
 * Assertion failures are not TallyErrors: they are bugs and crash the process.
 */
export type ErrorKind =
  | 'invalid_argument'
  | 'out_of_range'
  | 'resource_exhausted'
  | 'unavailable'
  | 'deadline_exceeded'
  | 'data_loss'
  | 'failed_precondition'
  | 'aborted'
  | 'internal';

export abstract class TallyError extends Error {
  abstract readonly kind: ErrorKind;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The request itself is malformed: bad namespace, bad count. */
export class InvalidArgumentError extends TallyError {
  readonly kind = 'invalid_argument';
}

/** A node option (segment size, limits) is out of range: a startup error, never per request. */
export class ConfigError extends TallyError {
  readonly kind = 'invalid_argument';
}

/** A counter would pass its maximum; Tally never wraps. */
export class CounterExhaustedError extends TallyError {
  readonly kind = 'out_of_range';
}

/** Too many queued requests, too many namespaces: the caller may retry later. */
export class OverloadedError extends TallyError {
  readonly kind = 'resource_exhausted';
}

/** The disk is full: nothing new is acknowledged until space returns. */
export class NoSpaceError extends TallyError {
  readonly kind = 'resource_exhausted';
}

/** The node is draining, failed or not yet serving. */
export class UnavailableError extends TallyError {
  readonly kind = 'unavailable';
}

/** The caller's deadline passed before the request was written. */
export class DeadlineExceededError extends TallyError {
  readonly kind = 'deadline_exceeded';
}

/** Stored data failed verification (CRC, index sequence, structure). */
export class CorruptionError extends TallyError {
  readonly kind = 'data_loss';
}

/** The data directory is in use by another process, belongs to another node, or is not Tally's. */
export class DataDirError extends TallyError {
  readonly kind = 'failed_precondition';
}

/** This node does not take allocations (a standby); `primaryAddress` says where to go. */
export class NotPrimaryError extends TallyError {
  readonly kind = 'failed_precondition';
  constructor(
    message: string,
    readonly primaryAddress?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A replication peer carries an epoch lower than the one this node has accepted (or the same
 * number from another primary). A primary that gets this is fenced: it acknowledges nothing more.
 */
export class StaleEpochError extends TallyError {
  readonly kind = 'failed_precondition';
}

/** The replication peer is not in a role that takes this message (a primary sent appends). */
export class WrongRoleError extends TallyError {
  readonly kind = 'failed_precondition';
}

/**
 * A replication session cannot go on as it is (a gap in indexes, a log mismatch, a newer
 * session took over): the primary starts a new session with Hello.
 */
export class ReplicationAbortedError extends TallyError {
  readonly kind = 'aborted';
}

/** A replication message is malformed or out of protocol (the peer is not a Tally node). */
export class ProtocolError extends TallyError {
  readonly kind = 'invalid_argument';
}

/**
 * A planned switchover did not complete: the target did not serve in time (the controller
 * handed the primary back to the stepped-down node; the message says what happened).
 */
export class SwitchoverFailedError extends TallyError {
  readonly kind = 'aborted';
}

/** A message is larger than this node accepts. */
export class TooLargeError extends TallyError {
  readonly kind = 'resource_exhausted';
}

/**
 * A write or fsync failed in a way that leaves the file's durable state unknown. The only
 * safe reaction is to stop (never retry fsync on the same descriptor): the process exits.
 */
export class StorageFatalError extends TallyError {
  readonly kind = 'internal';
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}
