/**
 * protobufjs's encoding of tally.v1.Counter messages (through proto-loader), for tests that
 * check the hand-written hot-path codec (src/core/grpc-wire.ts) or talk raw HTTP/2.
 */
import { loadProtos } from '../server/proto';

export interface DecodedAllocateResponse {
  first: string;
  count: number;
  correlationId: string;
  epoch: string;
  index: string;
  error: { code: number; message: string; primaryAddress: string } | null;
}

const allocate = loadProtos().tally.v1.Counter.service.Allocate;

export const encodeAllocateRequest = allocate.requestSerialize as (req: object) => Buffer;
export const decodeAllocateRequestWithProtobufjs = allocate.requestDeserialize as (buf: Buffer) => {
  namespace: string;
  count: number;
  correlationId: string;
};
export const encodeAllocateResponse = allocate.responseSerialize as (res: object) => Buffer;
export const decodeAllocateResponse = allocate.responseDeserialize as (
  buf: Buffer,
) => DecodedAllocateResponse;
