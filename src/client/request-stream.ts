/**
 * One AllocateStream to one node, with the requests written on it and not yet answered, by
 * correlation id. Responses come in any order; each is handed to the owner with its request.
 * When the stream ends, every request still on it is handed back together with the status.
 */
import { CorrelationTable } from './correlation-table';
import type { AllocateTransport, StreamEnd, TransportStream, WireResponse } from './transport';

export interface StreamRequest {
  readonly namespace: string;
  readonly count: number;
}

export interface RequestStreamOwner<R extends StreamRequest> {
  answered(stream: RequestStream<R>, req: R, res: WireResponse): void;
  ended(stream: RequestStream<R>, status: StreamEnd, unanswered: R[]): void;
}

export class RequestStream<R extends StreamRequest> {
  private readonly outstanding = new CorrelationTable<R>();
  private readonly call: TransportStream;
  private endedFlag = false;

  constructor(
    readonly address: string,
    transport: AllocateTransport,
    private readonly owner: RequestStreamOwner<R>,
  ) {
    this.call = transport.open(address, {
      response: (res) => this.onResponse(res),
      end: (status) => this.onEnd(status),
    });
  }

  /** Requests written and not answered (nor forgotten). */
  get inFlight(): number {
    return this.outstanding.size;
  }

  /** The call has ended: nothing more can be written on it. */
  get ended(): boolean {
    return this.endedFlag;
  }

  send(req: R, correlationId: number): void {
    this.outstanding.set(correlationId, req);
    this.call.write({ namespace: req.namespace, count: req.count, correlationId });
  }

  /** Stops waiting for correlationId (its caller gave up); a late answer is dropped. */
  forget(correlationId: number): void {
    this.outstanding.take(correlationId);
  }

  /** Half-closes an idle stream; the node ends the call. */
  end(): void {
    if (!this.endedFlag) this.call.end();
  }

  cancel(): void {
    if (!this.endedFlag) this.call.cancel();
  }

  private onResponse(res: WireResponse): void {
    const req = this.outstanding.take(res.correlationId);
    if (req === undefined) return; // forgotten: its caller already gave up
    this.owner.answered(this, req, res);
  }

  private onEnd(status: StreamEnd): void {
    this.endedFlag = true;
    const unanswered = this.outstanding.drain();
    this.owner.ended(this, status, unanswered);
  }
}
