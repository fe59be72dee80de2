/**
 * What a TallyClient or IdBlockAllocator call can fail with: one class per failure, each with
 * the gRPC status `code` it stands for. They are not TallyErrors (src/core/errors.ts): those
 * are the server's failures, mapped to a status at the API edge; these are what a caller sees
 * after the client has already retried whatever was safe and useful to retry.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';

/** A status the client got from a node (or made up for a connection that failed). */
export interface StatusSummary {
  code: GrpcStatus;
  details: string;
}

export abstract class ClientError extends Error {
  /** The gRPC status this failure stands for. */
  abstract readonly code: GrpcStatus;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The request itself was refused with a status that retrying cannot change: INVALID_ARGUMENT,
 * OUT_OF_RANGE, DATA_LOSS, or any other status the client does not know to be transient.
 * Sent at most once: it was not retried.
 */
export class ClientRequestError extends ClientError {
  constructor(
    readonly code: GrpcStatus,
    readonly details: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The caller's deadline passed (or the next retry could not start before it). `lastStatus` is
 * the failure of the last attempt, when one failed: UNAVAILABLE while no primary answered,
 * FAILED_PRECONDITION while only standbys did; undefined when the deadline passed while the
 * first attempt was still unanswered.
 */
export class ClientDeadlineExceededError extends ClientError {
  readonly code = GrpcStatus.DEADLINE_EXCEEDED;
  constructor(
    message: string,
    readonly attempts: number,
    readonly lastStatus?: StatusSummary,
  ) {
    super(message);
  }
}

/** The client already holds its maximum of pending requests; nothing was sent. */
export class ClientOverloadedError extends ClientError {
  readonly code = GrpcStatus.RESOURCE_EXHAUSTED;
}

/** close() was called before the request completed (or before it was made). */
export class ClientClosedError extends ClientError {
  readonly code = GrpcStatus.CANCELLED;
}

/** The caller's AbortSignal fired; `cause` is the signal's reason. */
export class ClientAbortedError extends ClientError {
  readonly code = GrpcStatus.CANCELLED;
}
