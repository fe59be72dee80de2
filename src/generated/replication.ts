import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Ack as _tally_v1_Ack, Ack__Output as _tally_v1_Ack__Output } from './tally/v1/Ack';
import type { Append as _tally_v1_Append, Append__Output as _tally_v1_Append__Output } from './tally/v1/Append';
import type { EpochStart as _tally_v1_EpochStart, EpochStart__Output as _tally_v1_EpochStart__Output } from './tally/v1/EpochStart';
import type { Hello as _tally_v1_Hello, Hello__Output as _tally_v1_Hello__Output } from './tally/v1/Hello';
import type { HelloReply as _tally_v1_HelloReply, HelloReply__Output as _tally_v1_HelloReply__Output } from './tally/v1/HelloReply';
import type { InstallSnapshot as _tally_v1_InstallSnapshot, InstallSnapshot__Output as _tally_v1_InstallSnapshot__Output } from './tally/v1/InstallSnapshot';
import type { ReplicateRequest as _tally_v1_ReplicateRequest, ReplicateRequest__Output as _tally_v1_ReplicateRequest__Output } from './tally/v1/ReplicateRequest';
import type { ReplicateResponse as _tally_v1_ReplicateResponse, ReplicateResponse__Output as _tally_v1_ReplicateResponse__Output } from './tally/v1/ReplicateResponse';
import type { ReplicationClient as _tally_v1_ReplicationClient, ReplicationDefinition as _tally_v1_ReplicationDefinition } from './tally/v1/Replication';
import type { SnapshotCounter as _tally_v1_SnapshotCounter, SnapshotCounter__Output as _tally_v1_SnapshotCounter__Output } from './tally/v1/SnapshotCounter';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  tally: {
    v1: {
      Ack: MessageTypeDefinition<_tally_v1_Ack, _tally_v1_Ack__Output>
      Append: MessageTypeDefinition<_tally_v1_Append, _tally_v1_Append__Output>
      EpochStart: MessageTypeDefinition<_tally_v1_EpochStart, _tally_v1_EpochStart__Output>
      Hello: MessageTypeDefinition<_tally_v1_Hello, _tally_v1_Hello__Output>
      HelloReply: MessageTypeDefinition<_tally_v1_HelloReply, _tally_v1_HelloReply__Output>
      InstallSnapshot: MessageTypeDefinition<_tally_v1_InstallSnapshot, _tally_v1_InstallSnapshot__Output>
      ReplicateRequest: MessageTypeDefinition<_tally_v1_ReplicateRequest, _tally_v1_ReplicateRequest__Output>
      ReplicateResponse: MessageTypeDefinition<_tally_v1_ReplicateResponse, _tally_v1_ReplicateResponse__Output>
      Replication: SubtypeConstructor<typeof grpc.Client, _tally_v1_ReplicationClient> & { service: _tally_v1_ReplicationDefinition }
      SnapshotCounter: MessageTypeDefinition<_tally_v1_SnapshotCounter, _tally_v1_SnapshotCounter__Output>
    }
  }
}

