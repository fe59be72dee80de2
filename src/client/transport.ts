/**
 * What TallyClient needs from the network: AllocateStream calls to node addresses. The real
 * one is grpc-transport.ts (grpc-js); tests drive the client through a scripted fake
 * (src/testing/fake-allocate-transport.ts), so retries and deadlines run without sockets.
 */

/** One AllocateRequest as written on the stream. */
export interface WireRequest {
  namespace: string;
  count: number;
  correlationId: number;
}

/** A per-request failure on the stream (tally.v1.StreamError). */
export interface WireError {
  code: number;
  message: string;
  /** The primary's address on FAILED_PRECONDITION from a standby that knows it; else ''. */
  primaryAddress: string;
}

/** One AllocateResponse; uint64 fields as numbers (IDs never pass 2^53-1). */
export interface WireResponse {
  first: number;
  count: number;
  correlationId: number;
  epoch: number;
  index: number;
  error: WireError | null;
}

/** How a whole stream ended: every request still unanswered on it failed with this. */
export interface StreamEnd {
  code: number;
  details: string;
  /** `tally-primary` from the trailers, when the node sent one. */
  primaryAddress?: string;
}

export interface StreamEvents {
  response(res: WireResponse): void;
  /** Called once, after the last response(). */
  end(status: StreamEnd): void;
}

export interface TransportStream {
  write(req: WireRequest): void;
  /** Half-closes: the node answers what it has and ends the call. */
  end(): void;
  /** Ends the call now; end(CANCELLED) follows. */
  cancel(): void;
}

export interface AllocateTransport {
  /** Opens an AllocateStream to address; a failure to connect arrives as events.end(). */
  open(address: string, events: StreamEvents): TransportStream;
  /** Releases every connection; streams still open are cancelled. */
  close(): void;
}
