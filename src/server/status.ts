/**
 * The one error → gRPC status table. Every TallyError reaches callers through here; any
 * other error is a bug or an unexpected failure and is reported as INTERNAL with a generic
 * message (its details go to the log, never to the client).
 */
import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { type ErrorKind, NotPrimaryError, TallyError } from '../core/errors';
import { errorNameKey, primaryAddressKey } from '../core/wire';

export { errorNameKey, primaryAddressKey, statusName } from '../core/wire';

const statusByKind: Readonly<Record<ErrorKind, GrpcStatus>> = {
  invalid_argument: GrpcStatus.INVALID_ARGUMENT,
  out_of_range: GrpcStatus.OUT_OF_RANGE,
  resource_exhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  unavailable: GrpcStatus.UNAVAILABLE,
  deadline_exceeded: GrpcStatus.DEADLINE_EXCEEDED,
  data_loss: GrpcStatus.DATA_LOSS,
  failed_precondition: GrpcStatus.FAILED_PRECONDITION,
  aborted: GrpcStatus.ABORTED,
  internal: GrpcStatus.INTERNAL,
};

export const internalErrorMessage = 'server: internal error';

export interface GrpcError {
  code: GrpcStatus;
  details: string;
  metadata?: Metadata;
  /** NotPrimaryError: where the primary is. */
  primaryAddress?: string;
}

/** Maps any error to the status a client sees; unknown errors are logged, not leaked. */
export function toGrpcError(err: unknown, logger: Logger): GrpcError {
  if (err instanceof TallyError) {
    const code = statusByKind[err.kind] as GrpcStatus | undefined;
    if (code !== undefined) {
      const metadata = new Metadata();
      metadata.set(errorNameKey, err.name);
      const primaryAddress = err instanceof NotPrimaryError ? err.primaryAddress : undefined;
      if (primaryAddress) metadata.set(primaryAddressKey, primaryAddress);
      return { code, details: err.message, metadata, primaryAddress };
    }
  }
  logger.error({ err }, 'server: unexpected error mapped to INTERNAL');
  return { code: GrpcStatus.INTERNAL, details: internalErrorMessage };
}
