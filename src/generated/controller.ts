import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { ClusterConfig as _tally_v1_ClusterConfig, ClusterConfig__Output as _tally_v1_ClusterConfig__Output } from './tally/v1/ClusterConfig';
import type { ControllerClient as _tally_v1_ControllerClient, ControllerDefinition as _tally_v1_ControllerDefinition } from './tally/v1/Controller';
import type { Failover as _tally_v1_Failover, Failover__Output as _tally_v1_Failover__Output } from './tally/v1/Failover';
import type { ForcePromoteRequest as _tally_v1_ForcePromoteRequest, ForcePromoteRequest__Output as _tally_v1_ForcePromoteRequest__Output } from './tally/v1/ForcePromoteRequest';
import type { GetConfigRequest as _tally_v1_GetConfigRequest, GetConfigRequest__Output as _tally_v1_GetConfigRequest__Output } from './tally/v1/GetConfigRequest';
import type { InSyncChange as _tally_v1_InSyncChange, InSyncChange__Output as _tally_v1_InSyncChange__Output } from './tally/v1/InSyncChange';
import type { JoinRequest as _tally_v1_JoinRequest, JoinRequest__Output as _tally_v1_JoinRequest__Output } from './tally/v1/JoinRequest';
import type { Member as _tally_v1_Member, Member__Output as _tally_v1_Member__Output } from './tally/v1/Member';
import type { NodeRef as _tally_v1_NodeRef, NodeRef__Output as _tally_v1_NodeRef__Output } from './tally/v1/NodeRef';
import type { Placement as _tally_v1_Placement, Placement__Output as _tally_v1_Placement__Output } from './tally/v1/Placement';
import type { SwitchoverRequest as _tally_v1_SwitchoverRequest, SwitchoverRequest__Output as _tally_v1_SwitchoverRequest__Output } from './tally/v1/SwitchoverRequest';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  tally: {
    v1: {
      ClusterConfig: MessageTypeDefinition<_tally_v1_ClusterConfig, _tally_v1_ClusterConfig__Output>
      Controller: SubtypeConstructor<typeof grpc.Client, _tally_v1_ControllerClient> & { service: _tally_v1_ControllerDefinition }
      Failover: MessageTypeDefinition<_tally_v1_Failover, _tally_v1_Failover__Output>
      ForcePromoteRequest: MessageTypeDefinition<_tally_v1_ForcePromoteRequest, _tally_v1_ForcePromoteRequest__Output>
      GetConfigRequest: MessageTypeDefinition<_tally_v1_GetConfigRequest, _tally_v1_GetConfigRequest__Output>
      InSyncChange: MessageTypeDefinition<_tally_v1_InSyncChange, _tally_v1_InSyncChange__Output>
      JoinRequest: MessageTypeDefinition<_tally_v1_JoinRequest, _tally_v1_JoinRequest__Output>
      Member: MessageTypeDefinition<_tally_v1_Member, _tally_v1_Member__Output>
      NodeRef: MessageTypeDefinition<_tally_v1_NodeRef, _tally_v1_NodeRef__Output>
      Placement: MessageTypeDefinition<_tally_v1_Placement, _tally_v1_Placement__Output>
      SwitchoverRequest: MessageTypeDefinition<_tally_v1_SwitchoverRequest, _tally_v1_SwitchoverRequest__Output>
    }
  }
}

