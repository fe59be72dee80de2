/**
 * A scripted cluster behind the client's AllocateTransport seam: nodes by address, each
 * answering every request as its `answer` function says (allocate, fail with a status, or
 * hold the request unanswered), going down (streams refused or dropped), and a record of every
 * request written. Everything is delivered asynchronously (promise jobs), never inside the
 * client's own call, as a real stream would; timers are the test's (fake timers).
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import type {
  AllocateTransport,
  StreamEnd,
  StreamEvents,
  TransportStream,
  WireRequest,
  WireResponse,
} from '../client/transport';

/** What a node does with one request. */
export type FakeAnswer =
  'allocate' | 'hold' | { code: number; message?: string; primaryAddress?: string };

export interface SentRequest {
  address: string;
  req: WireRequest;
  atMs: number;
}

export class FakeNode {
  /** Down: new streams end UNAVAILABLE at once (connection refused). */
  down = false;
  epoch = 1;
  answer: (req: WireRequest) => FakeAnswer = () => 'allocate';
  readonly streams = new Set<FakeStream>();

  constructor(
    readonly address: string,
    readonly cluster: FakeCluster,
  ) {}

  /** Ends every open stream with `status`: their held requests fail with it. */
  dropStreams(status: StreamEnd = { code: GrpcStatus.UNAVAILABLE, details: 'fake: dropped' }) {
    for (const stream of [...this.streams]) stream.finish(status);
  }

  /** Answers every held request now ('allocate'), oldest first, or newest first. */
  release(order: 'oldest-first' | 'newest-first' = 'oldest-first'): void {
    for (const stream of this.streams) stream.release(order);
  }

  get held(): number {
    let n = 0;
    for (const stream of this.streams) n += stream.held.length;
    return n;
  }
}

class FakeStream implements TransportStream {
  readonly held: WireRequest[] = [];
  private done = false;

  constructor(
    private readonly node: FakeNode,
    private readonly events: StreamEvents,
  ) {
    node.streams.add(this);
    if (node.down) this.finish({ code: GrpcStatus.UNAVAILABLE, details: 'fake: connect refused' });
  }

  write(req: WireRequest): void {
    // Recorded even on a stream already refused: the client made the attempt.
    const cluster = this.node.cluster;
    cluster.sent.push({ address: this.node.address, req, atMs: cluster.now() });
    if (this.done) return;
    const answer = this.node.answer(req);
    if (answer === 'hold') this.held.push(req);
    else this.later(() => this.reply(req, answer));
  }

  end(): void {
    // A half-close: the node answers what it holds, then ends the call OK.
    this.release('oldest-first');
    this.finish({ code: GrpcStatus.OK, details: '' });
  }

  cancel(): void {
    this.finish({ code: GrpcStatus.CANCELLED, details: 'fake: cancelled' });
  }

  release(order: 'oldest-first' | 'newest-first'): void {
    const reqs = this.held.splice(0);
    if (order === 'newest-first') reqs.reverse();
    for (const req of reqs) this.later(() => this.reply(req, 'allocate'));
  }

  finish(status: StreamEnd): void {
    if (this.done) return;
    this.done = true;
    this.held.length = 0;
    this.node.streams.delete(this);
    this.later(() => this.events.end(status));
  }

  private reply(req: WireRequest, answer: Exclude<FakeAnswer, 'hold'>): void {
    if (this.done) return;
    const res: WireResponse = {
      first: 0,
      count: 0,
      correlationId: req.correlationId,
      epoch: 0,
      index: 0,
      error: null,
    };
    if (answer === 'allocate') {
      Object.assign(res, this.node.cluster.reserve(req), { epoch: this.node.epoch });
    } else {
      const { code, message = 'fake: refused', primaryAddress = '' } = answer;
      res.error = { code, message, primaryAddress };
    }
    this.events.response(res);
  }

  private later(fn: () => void): void {
    void Promise.resolve().then(fn);
  }
}

export class FakeCluster implements AllocateTransport {
  readonly sent: SentRequest[] = [];
  /** Addresses of every stream opened, in order. */
  readonly opened: string[] = [];
  closed = false;
  private readonly nodes = new Map<string, FakeNode>();
  private readonly lastId = new Map<string, number>();
  private index = 0;

  constructor(readonly now: () => number = () => Date.now()) {}

  node(address: string): FakeNode {
    let node = this.nodes.get(address);
    if (node === undefined) {
      node = new FakeNode(address, this);
      this.nodes.set(address, node);
    }
    return node;
  }

  open(address: string, events: StreamEvents): TransportStream {
    this.opened.push(address);
    return new FakeStream(this.node(address), events);
  }

  close(): void {
    this.closed = true;
  }

  /** The cluster's counters: one per namespace, shared by every node. */
  reserve(req: WireRequest): { first: number; count: number; index: number } {
    const first = (this.lastId.get(req.namespace) ?? 0) + 1;
    this.lastId.set(req.namespace, first + req.count - 1);
    return { first, count: req.count, index: ++this.index };
  }

  sentTo(address: string): number {
    return this.sent.filter((s) => s.address === address).length;
  }
}
