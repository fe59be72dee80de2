/**
 * The client's AllocateTransport to nodes in this process (the cluster harness, the
 * simulator): each request written on a stream is one node.allocate() call; its outcome is a
 * response, errors mapped through the server's one status table (a standby's refusal carries
 * the primary's address). Answers and stream ends are delivered on the clock's runSoon, later
 * than the call that caused them, as a socket would deliver them. A stream opened to an
 * address with no node ends UNAVAILABLE (connection refused); drop() ends every stream to an
 * address (a crashed process's connections reset).
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type {
  AllocateTransport,
  StreamEnd,
  StreamEvents,
  TransportStream,
  WireRequest,
  WireResponse,
} from '../client/transport';
import type { Clock } from '../core/clock';
import type { TallyError } from '../core/errors';
import type { AllocateResult, CounterNode } from '../node/types';
import { toGrpcError } from '../server/status';

export class InProcessTransport implements AllocateTransport {
  private readonly streams = new Set<InProcessStream>();

  constructor(
    /** The node serving `address` now, or null when nothing listens there. */
    private readonly nodeAt: (address: string) => CounterNode | null,
    readonly clock: Clock,
    readonly logger: Logger,
  ) {}

  open(address: string, events: StreamEvents): TransportStream {
    const stream = new InProcessStream(this, address, this.nodeAt(address), events);
    this.streams.add(stream);
    return stream;
  }

  /** Every stream to `address` ends UNAVAILABLE, its unanswered requests with it. */
  drop(address: string): void {
    for (const s of [...this.streams]) {
      if (s.address === address) s.finish({ code: GrpcStatus.UNAVAILABLE, details: 'reset' });
    }
  }

  close(): void {
    for (const s of [...this.streams]) s.finish({ code: GrpcStatus.CANCELLED, details: 'closed' });
  }

  forget(stream: InProcessStream): void {
    this.streams.delete(stream);
  }
}

class InProcessStream implements TransportStream {
  private done = false;
  private halfClosed = false;
  private unanswered = 0;

  constructor(
    private readonly owner: InProcessTransport,
    readonly address: string,
    private readonly node: CounterNode | null,
    private readonly events: StreamEvents,
  ) {
    if (node === null) this.finish({ code: GrpcStatus.UNAVAILABLE, details: 'connect refused' });
  }

  write(req: WireRequest): void {
    const node = this.node;
    if (this.done || this.halfClosed || node === null) return;
    this.unanswered++;
    node.allocate(req.namespace, req.count, undefined, (err, result) => {
      this.owner.clock.runSoon(() => this.answer(req, err, result));
    });
  }

  end(): void {
    this.halfClosed = true;
    if (this.unanswered === 0) this.finish({ code: GrpcStatus.OK, details: '' });
  }

  cancel(): void {
    this.finish({ code: GrpcStatus.CANCELLED, details: 'cancelled' });
  }

  finish(status: StreamEnd): void {
    if (this.done) return;
    this.done = true;
    this.owner.forget(this);
    this.owner.clock.runSoon(() => this.events.end(status));
  }

  private answer(req: WireRequest, err: TallyError | null, result?: AllocateResult): void {
    if (this.done) return;
    this.unanswered--;
    const res: WireResponse = {
      first: 0,
      count: 0,
      correlationId: req.correlationId,
      epoch: 0,
      index: 0,
      error: null,
    };
    if (err !== null || result === undefined) {
      const status = toGrpcError(err, this.owner.logger);
      res.error = {
        code: status.code,
        message: status.details,
        primaryAddress: status.primaryAddress ?? '',
      };
    } else {
      Object.assign(res, result);
    }
    this.events.response(res);
    if (this.halfClosed && this.unanswered === 0) this.finish({ code: GrpcStatus.OK, details: '' });
  }
}
