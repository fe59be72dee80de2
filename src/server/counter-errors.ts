/**
 * The statuses Counter calls are refused with before they reach the node, shared by both ways
 * Counter is served (counter-service.ts on Node's http2, h2/unary-connection.ts below it).
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { ResponseFields } from '../core/grpc-wire';
import { receiveMessageBytesMax } from '../core/limits';
import type { AllocateResult } from '../node/types';
import type { GrpcError } from './status';

export const drainingMessage = 'server: draining, retry on another node';

export const counterErrors = {
  tooLarge: {
    code: GrpcStatus.RESOURCE_EXHAUSTED,
    details: `server: request larger than ${receiveMessageBytesMax} bytes`,
  },
  undecodable: {
    code: GrpcStatus.INVALID_ARGUMENT,
    details: 'server: request is not a valid tally.v1.AllocateRequest',
  },
  compressed: {
    code: GrpcStatus.UNIMPLEMENTED,
    details: 'server: compressed messages are not supported (grpc-accept-encoding: identity)',
  },
  notOneMessage: {
    code: GrpcStatus.INVALID_ARGUMENT,
    details: 'server: unary Allocate takes exactly one request message',
  },
  cutOff: {
    code: GrpcStatus.INVALID_ARGUMENT,
    details: 'server: the request stream ended inside a message',
  },
  draining: { code: GrpcStatus.UNAVAILABLE, details: drainingMessage },
} satisfies Record<string, GrpcError>;

/** grpc-message: the details percent-encoded, as grpc-js clients decode them (decodeURI). */
export function grpcMessage(details: string): string {
  try {
    return encodeURI(details);
  } catch {
    return 'server%20error';
  }
}

/** The response fields of a successful allocation. */
export function okFields(result: AllocateResult, correlationId: Buffer | null): ResponseFields {
  return {
    first: result.first,
    count: result.count,
    epoch: result.epoch,
    index: result.index,
    correlationId,
    error: null,
  };
}

/** The response fields of a request that failed (a StreamError on AllocateStream). */
export function errorFields(correlationId: Buffer | null, status: GrpcError): ResponseFields {
  return {
    first: 0,
    count: 0,
    epoch: 0,
    index: 0,
    correlationId,
    error: {
      code: status.code,
      message: status.details,
      primaryAddress: status.primaryAddress ?? '',
    },
  };
}
