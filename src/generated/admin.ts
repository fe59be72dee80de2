import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { AdminClient as _tally_v1_AdminClient, AdminDefinition as _tally_v1_AdminDefinition } from './tally/v1/Admin';
import type { CheckpointRequest as _tally_v1_CheckpointRequest, CheckpointRequest__Output as _tally_v1_CheckpointRequest__Output } from './tally/v1/CheckpointRequest';
import type { CheckpointResponse as _tally_v1_CheckpointResponse, CheckpointResponse__Output as _tally_v1_CheckpointResponse__Output } from './tally/v1/CheckpointResponse';
import type { FenceRequest as _tally_v1_FenceRequest, FenceRequest__Output as _tally_v1_FenceRequest__Output } from './tally/v1/FenceRequest';
import type { NamespaceStatus as _tally_v1_NamespaceStatus, NamespaceStatus__Output as _tally_v1_NamespaceStatus__Output } from './tally/v1/NamespaceStatus';
import type { PromoteRequest as _tally_v1_PromoteRequest, PromoteRequest__Output as _tally_v1_PromoteRequest__Output } from './tally/v1/PromoteRequest';
import type { PromoteResponse as _tally_v1_PromoteResponse, PromoteResponse__Output as _tally_v1_PromoteResponse__Output } from './tally/v1/PromoteResponse';
import type { ReplicationStatus as _tally_v1_ReplicationStatus, ReplicationStatus__Output as _tally_v1_ReplicationStatus__Output } from './tally/v1/ReplicationStatus';
import type { StatusRequest as _tally_v1_StatusRequest, StatusRequest__Output as _tally_v1_StatusRequest__Output } from './tally/v1/StatusRequest';
import type { StatusResponse as _tally_v1_StatusResponse, StatusResponse__Output as _tally_v1_StatusResponse__Output } from './tally/v1/StatusResponse';
import type { StepDownRequest as _tally_v1_StepDownRequest, StepDownRequest__Output as _tally_v1_StepDownRequest__Output } from './tally/v1/StepDownRequest';
import type { StepDownResponse as _tally_v1_StepDownResponse, StepDownResponse__Output as _tally_v1_StepDownResponse__Output } from './tally/v1/StepDownResponse';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  tally: {
    v1: {
      Admin: SubtypeConstructor<typeof grpc.Client, _tally_v1_AdminClient> & { service: _tally_v1_AdminDefinition }
      CheckpointRequest: MessageTypeDefinition<_tally_v1_CheckpointRequest, _tally_v1_CheckpointRequest__Output>
      CheckpointResponse: MessageTypeDefinition<_tally_v1_CheckpointResponse, _tally_v1_CheckpointResponse__Output>
      FenceRequest: MessageTypeDefinition<_tally_v1_FenceRequest, _tally_v1_FenceRequest__Output>
      NamespaceStatus: MessageTypeDefinition<_tally_v1_NamespaceStatus, _tally_v1_NamespaceStatus__Output>
      PromoteRequest: MessageTypeDefinition<_tally_v1_PromoteRequest, _tally_v1_PromoteRequest__Output>
      PromoteResponse: MessageTypeDefinition<_tally_v1_PromoteResponse, _tally_v1_PromoteResponse__Output>
      ReplicationStatus: MessageTypeDefinition<_tally_v1_ReplicationStatus, _tally_v1_ReplicationStatus__Output>
      StatusRequest: MessageTypeDefinition<_tally_v1_StatusRequest, _tally_v1_StatusRequest__Output>
      StatusResponse: MessageTypeDefinition<_tally_v1_StatusResponse, _tally_v1_StatusResponse__Output>
      StepDownRequest: MessageTypeDefinition<_tally_v1_StepDownRequest, _tally_v1_StepDownRequest__Output>
      StepDownResponse: MessageTypeDefinition<_tally_v1_StepDownResponse, _tally_v1_StepDownResponse__Output>
    }
  }
}

