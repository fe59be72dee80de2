/**
 * tally.v1.Replication over gRPC: the standby's side (a bidi-stream handler that hands the
 * stream to the node) and the primary's side (a Dialer that opens streams to the standby).
 * Messages are converted between the wire types and replication/protocol.ts here; refusals
 * travel as a gRPC status plus the TallyError class name in trailing metadata, so the primary
 * can tell "fenced" (StaleEpochError) from "try again".
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  CorruptionError,
  InvalidArgumentError,
  ProtocolError,
  ReplicationAbortedError,
  StaleEpochError,
  TooLargeError,
  UnavailableError,
  WrongRoleError,
  type TallyError,
} from '../core/errors';
import { replicationMessageBytesMax } from '../core/limits';
import type { ReplicateRequest__Output } from '../generated/tally/v1/ReplicateRequest';
import type { ReplicateResponse__Output } from '../generated/tally/v1/ReplicateResponse';
import type { ReplicationHandlers } from '../generated/tally/v1/Replication';
import type { CounterNode } from '../node/types';
import type { ChannelEvents, Dialer, ToPrimary, ToStandby } from '../replication/protocol';
import { loadProtos } from './proto';
import { errorNameKey, toGrpcError } from './status';

type ServerStream = grpc.ServerDuplexStream<ReplicateRequest__Output, unknown>;

const num = (v: string | number | undefined): number => Number(v ?? 0);

function fromWireRequest(req: ReplicateRequest__Output): ToStandby {
  if (req.kind === 'hello' && req.hello) {
    const h = req.hello;
    return {
      kind: 'hello',
      protocolVersion: h.protocolVersion,
      primaryId: h.primaryId,
      epoch: num(h.epoch),
      primaryAddress: h.primaryAddress,
      epochNonce: h.epochNonce,
      clusterId: h.clusterId,
      primaryIncarnation: h.primaryIncarnation,
      idFloor: num(h.idFloor),
    };
  }
  if (req.kind === 'append' && req.append) {
    const a = req.append;
    return {
      kind: 'append',
      epoch: num(a.epoch),
      prevIndex: num(a.prevIndex),
      prevEpoch: num(a.prevEpoch),
      recordCount: a.recordCount,
      records: a.records,
      primaryLastIndex: num(a.primaryLastIndex),
      lastEpoch: num(a.lastEpoch),
      commitIndex: num(a.commitIndex),
    };
  }
  if (req.kind === 'installSnapshot' && req.installSnapshot) {
    const s = req.installSnapshot;
    return {
      kind: 'installSnapshot',
      epoch: num(s.epoch),
      index: num(s.index),
      indexEpoch: num(s.indexEpoch),
      counters: s.counters.map((c) => [c.namespace, num(c.lastId)]),
      floor: num(s.idFloor),
      epochs: s.epochs.map((e) => ({ epoch: num(e.epoch), index: num(e.index) })),
    };
  }
  throw new ProtocolError('replication: empty or unknown message');
}

function toWireRequest(m: ToStandby): object {
  if (m.kind === 'hello') return { hello: m };
  if (m.kind === 'append') return { append: m };
  return {
    installSnapshot: {
      ...m,
      counters: m.counters.map(([namespace, lastId]) => ({ namespace, lastId })),
      idFloor: m.floor,
    },
  };
}

function fromWireResponse(res: ReplicateResponse__Output): ToPrimary {
  if (res.kind === 'hello' && res.hello) {
    const h = res.hello;
    return {
      kind: 'helloReply',
      nodeId: h.nodeId,
      firstIndex: num(h.firstIndex),
      lastIndex: num(h.lastIndex),
      epochs: h.epochs.map((e) => ({ epoch: num(e.epoch), index: num(e.index) })),
      snapshotIndex: num(h.snapshotIndex),
      snapshotEpoch: num(h.snapshotEpoch),
      acknowledgedFloor: num(h.acknowledgedFloor),
      idFloor: num(h.idFloor),
      confirmedFloor: num(h.confirmedFloor),
    };
  }
  if (res.kind === 'ack' && res.ack)
    return { kind: 'ack', durableIndex: num(res.ack.durableIndex) };
  throw new ProtocolError('replication: empty or unknown response from the standby');
}

function toWireResponse(m: ToPrimary): object {
  if (m.kind === 'helloReply') return { hello: m };
  return { ack: m };
}

/** The standby's handler: one node session per stream. */
export function createReplicationHandlers(node: CounterNode, logger: Logger): ReplicationHandlers {
  return {
    Replicate: (call: ServerStream) => {
      let ended = false;
      const end = (err?: TallyError): void => {
        if (ended) return;
        ended = true;
        if (err === undefined) return void call.end();
        const status = toGrpcError(err, logger);
        call.emit('error', {
          code: status.code,
          details: status.details,
          metadata: status.metadata,
        });
      };
      const events: ChannelEvents<ToStandby> = node.openReplication(
        { send: (m) => !ended && call.write(toWireResponse(m)), close: end },
        call.getPeer(),
      );
      call.on('data', (req: ReplicateRequest__Output) => {
        let message: ToStandby;
        try {
          message = fromWireRequest(req);
        } catch (err) {
          events.onClose(err as TallyError);
          return end(err as TallyError);
        }
        events.onMessage(message);
      });
      call.on('end', () => {
        events.onClose(null);
        end();
      });
      call.on('error', () => undefined); // cancelled by the primary: 'close' follows
      call.on('close', () => {
        events.onClose(new UnavailableError('replication: stream closed'));
        ended = true;
      });
    },
  };
}

const errorsByName: Record<string, new (message: string) => TallyError> = {
  StaleEpochError,
  WrongRoleError,
  ReplicationAbortedError,
  ProtocolError,
  TooLargeError,
  CorruptionError,
  InvalidArgumentError,
};

/** A gRPC status from the standby as the TallyError it was (UNAVAILABLE when unknown). */
function fromServiceError(err: grpc.ServiceError, target: string): TallyError {
  const name = err.metadata?.get(errorNameKey)[0];
  const Known = typeof name === 'string' ? errorsByName[name] : undefined;
  if (Known) return new Known(err.details);
  if (err.code === grpc.status.UNIMPLEMENTED) {
    return new ProtocolError(
      `replication: ${target} is not a Tally node (no tally.v1.Replication)`,
    );
  }
  return new UnavailableError(`replication: ${target}: ${grpc.status[err.code]} ${err.details}`);
}

/** Dials the standby: one Replication client (one HTTP/2 connection), a new stream per session. */
export function grpcDialer(target: string): Dialer & { close(): void } {
  const { tally } = loadProtos();
  const client = new tally.v1.Replication(target, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': replicationMessageBytesMax + 64 * 1024,
    'grpc.max_receive_message_length': replicationMessageBytesMax,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1000,
  });
  return {
    target,
    close: () => client.close(),
    open: (events) => {
      const call = client.Replicate();
      let closed = false;
      const finish = (err: TallyError | null): void => {
        if (closed) return;
        closed = true;
        events.onClose(err);
      };
      call.on('data', (res: ReplicateResponse__Output) => {
        try {
          events.onMessage(fromWireResponse(res));
        } catch (err) {
          call.cancel();
          finish(err as TallyError);
        }
      });
      call.on('error', (err: grpc.ServiceError) => finish(fromServiceError(err, target)));
      call.on('end', () => finish(new UnavailableError(`replication: ${target} ended the stream`)));
      return {
        send: (m) => {
          if (!closed) call.write(toWireRequest(m));
        },
        close: () => {
          closed = true;
          call.cancel();
        },
      };
    },
  };
}
