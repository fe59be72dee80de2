/**
 * AllocateTransport over grpc-js, for TLS and custom channel options (the default transport,
 * http2-transport.ts, is plaintext and leaner): one grpc.Client (one channel) per node address, created on
 * first use and closed by close(). counter.proto is loaded with uint64 fields as JS numbers:
 * IDs, epochs, indexes and our correlation ids all stay below 2^53, so they are exact.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  clientConnectTimeoutMs,
  clientKeepaliveTimeMs,
  clientKeepaliveTimeoutMs,
} from '../core/limits';
import { loaderOptions, primaryAddressKey } from '../core/wire';
import { retryBackoffMaxMs } from './backoff';
import type {
  AllocateTransport,
  StreamEnd,
  StreamEvents,
  TransportStream,
  WireRequest,
  WireResponse,
} from './transport';

/**
 * grpc-js's own reconnect backoff starts at 1 s and grows to 120 s; a channel in backoff fails
 * calls at once, so a node that comes back would be ignored long after our retries want it.
 */
export const defaultChannelOptions: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': retryBackoffMaxMs,
  // Keepalive: a node that went silent (paused, partitioned: no reset ever comes) is dropped
  // within 0.5–0.75 s — a ping 250 ms after the last ack, 500 ms for its ack — and the pending calls
  // move on instead of waiting out their deadlines. Pings also flow between calls. A node's
  // event loop has to stall past 500 ms for a live connection to be dropped; the calls are
  // then retried (a gap, never a reissue). The grpc-js server accepts pings at any rate.
  'grpc.keepalive_time_ms': clientKeepaliveTimeMs,
  'grpc.keepalive_timeout_ms': clientKeepaliveTimeoutMs,
  'grpc.keepalive_permit_without_calls': 1,
};

type AllocateStreamMethod = protoLoader.MethodDefinition<object, object>;
let allocateStreamMethod: AllocateStreamMethod | undefined;

/** Loaded on first use, not when the package is imported. */
function allocateStream(): AllocateStreamMethod {
  if (allocateStreamMethod === undefined) {
    const definition = protoLoader.loadSync('tally/v1/counter.proto', {
      ...loaderOptions,
      longs: Number,
    });
    const service = definition['tally.v1.Counter'] as protoLoader.ServiceDefinition;
    allocateStreamMethod = service.AllocateStream as AllocateStreamMethod;
  }
  return allocateStreamMethod;
}

export interface GrpcTransportOptions {
  /** Default: insecure (plaintext), like the `tally` CLI. */
  credentials?: grpc.ChannelCredentials;
  /** Merged over defaultChannelOptions (keepalive, message sizes, …). */
  channelOptions?: grpc.ChannelOptions;
}

export class GrpcTransport implements AllocateTransport {
  private readonly clients = new Map<string, grpc.Client>();
  private readonly credentials: grpc.ChannelCredentials;
  private readonly channelOptions: grpc.ChannelOptions;

  constructor(opts: GrpcTransportOptions = {}) {
    this.credentials = opts.credentials ?? grpc.credentials.createInsecure();
    this.channelOptions = { ...defaultChannelOptions, ...opts.channelOptions };
  }

  open(address: string, events: StreamEvents): TransportStream {
    const method = allocateStream();
    const client = this.client(address);
    const call = client.makeBidiStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
    ) as grpc.ClientDuplexStream<WireRequest, WireResponse>;
    const connect = { timedOut: false };
    watchCall(call, events, () =>
      connect.timedOut
        ? `client: no connection to ${address} within ${clientConnectTimeoutMs} ms`
        : null,
    );
    if (client.getChannel().getConnectivityState(true) !== grpc.connectivityState.READY) {
      client.waitForReady(Date.now() + clientConnectTimeoutMs, (err) => {
        if (err === undefined) return;
        connect.timedOut = true;
        call.cancel(); // a call that already ended is not touched
      });
    }
    return {
      write: (req) => void call.write(req),
      end: () => call.end(),
      cancel: () => call.cancel(),
    };
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private client(address: string): grpc.Client {
    let client = this.clients.get(address);
    if (client === undefined) {
      client = new grpc.Client(address, this.credentials, this.channelOptions);
      this.clients.set(address, client);
    }
    return client;
  }
}

/**
 * Hands responses and the final status to events. grpc-js may emit 'status' while responses
 * are still buffered in the readable side, so the end is reported only once both the status
 * and the readable 'end' have arrived: a response that did arrive is never counted as lost.
 */
function watchCall(
  call: grpc.ClientDuplexStream<WireRequest, WireResponse>,
  events: StreamEvents,
  /** Why the call was cancelled for want of a connection (null: it was not). */
  connectTimedOut: () => string | null,
): void {
  let status: StreamEnd | null = null;
  let readDone = false;
  const finish = (): void => {
    if (status !== null && readDone) events.end(status);
  };
  call.on('data', (res: WireResponse) => events.response(res));
  call.on('error', () => undefined); // the 'status' event carries the code
  call.on('end', () => ((readDone = true), finish()));
  call.on('status', (s: grpc.StatusObject) => {
    const hint = s.metadata.get(primaryAddressKey)[0];
    const timedOut = s.code === grpc.status.CANCELLED ? connectTimedOut() : null;
    status =
      timedOut === null
        ? { code: s.code, details: s.details }
        : { code: grpc.status.UNAVAILABLE, details: timedOut };
    if (typeof hint === 'string' && hint !== '') status.primaryAddress = hint;
    finish();
  });
}
