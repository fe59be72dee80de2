/**
 * The replication protocol as plain values (indexes and epochs as numbers, records as bytes),
 * independent of gRPC so the sender and receiver state machines can run over a simulated
 * network in tests. grpc-transport.ts converts to and from tally.v1.Replication messages.
 */
import type { TallyError } from '../core/errors';

export const protocolVersion = 1;

export interface Hello {
  kind: 'hello';
  protocolVersion: number;
  primaryId: string;
  epoch: number;
  primaryAddress: string;
  /** With epoch and primaryId, the identity of the epoch (new for every epoch proposed). */
  epochNonce: string;
  /** The primary's cluster ('' when none). */
  clusterId: string;
  /** The primary's data directory ('' when unknown). */
  primaryIncarnation: string;
  /** The floor the primary's unseen namespaces start above (raised only by forced promotions). */
  idFloor: number;
}

export interface Append {
  kind: 'append';
  epoch: number;
  prevIndex: number;
  prevEpoch: number;
  recordCount: number;
  records: Buffer;
  primaryLastIndex: number;
  /**
   * Epoch of the last record, as the sender says (lets the standby chain queued Appends
   * before verifying them; verification still checks every record).
   */
  lastEpoch: number;
  /** Every record up to here is acknowledged by the primary (never truncated). */
  commitIndex: number;
}

export interface InstallSnapshot extends TransferSnapshot {
  kind: 'installSnapshot';
  epoch: number;
}

/** A snapshot as it travels: counters and floor as of `index`, whose epoch is `indexEpoch`. */
export interface TransferSnapshot {
  index: number;
  indexEpoch: number;
  counters: Array<[string, number]>;
  /** Namespaces not in `counters` start above this ID. */
  floor: number;
  /**
   * Where each epoch of the log up to `index` began, ascending (at most helloEpochsMax, the
   * newest; empty when unknown): the receiver keeps them, to match a peer's log later against
   * records it no longer holds.
   */
  epochs: EpochStart[];
}

export type ToStandby = Hello | Append | InstallSnapshot;

export interface EpochStart {
  epoch: number;
  index: number;
}

/** The shape of a log, as log matching needs it. */
export interface LogShape {
  /** Records firstIndex..lastIndex are in the WAL (firstIndex = lastIndex + 1 when empty). */
  firstIndex: number;
  lastIndex: number;
  /** Epoch boundaries among those records, ascending by index. */
  epochs: EpochStart[];
  /** Everything up to snapshotIndex is in the snapshot; snapshotEpoch is its last record's. */
  snapshotIndex: number;
  snapshotEpoch: number;
}

export interface HelloReply extends LogShape {
  kind: 'helloReply';
  nodeId: string;
  /** Every record up to here is known to be acknowledged on the standby. */
  acknowledgedFloor: number;
  /** The standby's floor for unseen namespaces. */
  idFloor: number;
  /**
   * Every record up to here was received from another primary and confirmed durable (records
   * of epochs the standby did not lead): that primary may have acknowledged them.
   */
  confirmedFloor: number;
}

export interface Ack {
  kind: 'ack';
  durableIndex: number;
}

export type ToPrimary = HelloReply | Ack;

/** One end of a replication stream. Messages arrive in order unless the network misbehaves. */
export interface Channel<Out> {
  send(message: Out): void;
  /** Ends the stream: with an error, the peer sees its status; without, a clean end. */
  close(err?: TallyError): void;
}

export interface ChannelEvents<In> {
  onMessage(message: In): void;
  /** The stream ended (peer closed it, the network broke, or it was refused). Called once. */
  onClose(err: TallyError | null): void;
}

/** How the primary reaches its standby: opens a new stream per session. */
export interface Dialer {
  readonly target: string;
  open(events: ChannelEvents<ToPrimary>): Channel<ToStandby>;
  /** Releases the connection (when the sender stops for good). */
  close?(): void;
}

/** Ends a stream this node will not serve; its messages are ignored. */
export function refuseReplication(
  channel: Channel<ToPrimary>,
  err: TallyError,
): ChannelEvents<ToStandby> {
  channel.close(err);
  return { onMessage: () => undefined, onClose: () => undefined };
}
