/**
 * The client library's AllocateTransport over the simulated network to in-process nodes: what
 * a TallyClient in the simulator talks to instead of HTTP/2. Each request and each answer takes
 * a seeded delay; a node that is down, or a client link that is cut, ends the stream with
 * UNAVAILABLE (as a refused or reset connection does) after a delay; requests in flight on it
 * are lost (the client retries: their IDs, if the node allocated them, are a gap). Errors are
 * mapped to gRPC statuses by the server's own mapping (toGrpcError), hints included.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import pino from 'pino';
import type {
  AllocateTransport,
  StreamEvents,
  TransportStream,
  WireRequest,
} from '../../src/client/transport';
import type { Clock } from '../../src/core/clock';
import type { TallyError } from '../../src/core/errors';
import type { AllocateResult, CounterNode } from '../../src/node/types';
import { toGrpcError } from '../../src/server/status';

const silent = pino({ level: 'silent' });

/** What the transport needs from the simulated world. */
export interface ClientNet {
  readonly clock: Clock;
  /** The node serving at `address` now (null: nothing listens there). */
  node(address: string): CounterNode | null;
  /** May `client` reach `address` now (no partition between them)? */
  linkUp(client: string, address: string): boolean;
  /** A one-way delay for the next message, ms. */
  delayMs(): number;
  /** Registers a stream, so a crash or a partition can end it. */
  track(stream: SimStream): void;
  untrack(stream: SimStream): void;
}

export class SimStream implements TransportStream {
  private ended = false;

  constructor(
    private readonly net: ClientNet,
    readonly client: string,
    readonly address: string,
    private readonly events: StreamEvents,
  ) {}

  write(req: WireRequest): void {
    if (this.ended) return;
    this.net.clock.setTimeout(() => this.deliver(req), this.net.delayMs());
  }

  end(): void {
    this.close(GrpcStatus.OK, 'sim: half-closed');
  }

  cancel(): void {
    this.close(GrpcStatus.CANCELLED, 'sim: cancelled');
  }

  /** The connection broke (node crashed, link cut): unanswered requests fail UNAVAILABLE. */
  broken(why: string): void {
    if (this.ended) return;
    const at = this.net.delayMs();
    this.ended = true;
    this.net.untrack(this);
    this.net.clock.setTimeout(
      () => this.events.end({ code: GrpcStatus.UNAVAILABLE, details: why }),
      at,
    );
  }

  private close(code: number, details: string): void {
    if (this.ended) return;
    this.ended = true;
    this.net.untrack(this);
    this.net.clock.setTimeout(() => this.events.end({ code, details }), 0);
  }

  private deliver(req: WireRequest): void {
    if (this.ended) return;
    const node = this.net.node(this.address);
    if (node === null || !this.net.linkUp(this.client, this.address)) return; // lost with the link
    node.allocate(req.namespace, req.count, undefined, (err, result) =>
      this.net.clock.setTimeout(() => this.answer(req, err, result), this.net.delayMs()),
    );
  }

  private answer(req: WireRequest, err: TallyError | null, result?: AllocateResult): void {
    if (this.ended || !this.net.linkUp(this.client, this.address)) return;
    if (err !== null || result === undefined) {
      const status = toGrpcError(err ?? new Error('sim: no result'), silent);
      this.events.response({
        first: 0,
        count: 0,
        correlationId: req.correlationId,
        epoch: 0,
        index: 0,
        error: {
          code: status.code,
          message: status.details,
          primaryAddress: status.primaryAddress ?? '',
        },
      });
      return;
    }
    this.events.response({
      first: result.first,
      count: result.count,
      correlationId: req.correlationId,
      epoch: result.epoch,
      index: result.index,
      error: null,
    });
  }
}

export class SimNodeTransport implements AllocateTransport {
  constructor(
    private readonly net: ClientNet,
    private readonly client: string,
  ) {}

  open(address: string, events: StreamEvents): TransportStream {
    const stream = new SimStream(this.net, this.client, address, events);
    if (this.net.node(address) === null || !this.net.linkUp(this.client, address)) {
      stream.broken(`sim: cannot reach ${address}`);
    } else {
      this.net.track(stream);
    }
    return stream;
  }

  close(): void {
    // Streams are ended by the client (cancel) before it closes the transport.
  }
}
