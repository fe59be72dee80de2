/**
 * The Tally client library: TallyClient (primary discovery, retries, pipelining),
 * IdBlockAllocator (IDs from memory), base62 short codes, and the errors they reject with.
 */
export {
  TallyClient,
  type Allocation,
  type AllocateOptions,
  type TallyClientOptions,
} from './tally-client';
export {
  IdBlockAllocator,
  type BlockSource,
  type IdBlockAllocatorOptions,
} from './id-block-allocator';
export { base62Alphabet, fromBase62, toBase62 } from './base62';
export type { PrimaryResolver } from './primary-finder';
export { controllerResolver, type ControllerResolver } from './controller-resolver';
export { retryBackoffMaxMs, retryBackoffMinMs, type BackoffOptions } from './backoff';
export type * from './transport';
export { Http2Transport, type Http2TransportOptions } from './http2-transport';
export { GrpcTransport, type GrpcTransportOptions } from './grpc-transport';
export * from './errors';
