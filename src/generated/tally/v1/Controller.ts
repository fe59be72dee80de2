// Original file: proto/tally/v1/controller.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ClusterConfig as _tally_v1_ClusterConfig, ClusterConfig__Output as _tally_v1_ClusterConfig__Output } from '../../tally/v1/ClusterConfig';
import type { ForcePromoteRequest as _tally_v1_ForcePromoteRequest, ForcePromoteRequest__Output as _tally_v1_ForcePromoteRequest__Output } from '../../tally/v1/ForcePromoteRequest';
import type { GetConfigRequest as _tally_v1_GetConfigRequest, GetConfigRequest__Output as _tally_v1_GetConfigRequest__Output } from '../../tally/v1/GetConfigRequest';
import type { InSyncChange as _tally_v1_InSyncChange, InSyncChange__Output as _tally_v1_InSyncChange__Output } from '../../tally/v1/InSyncChange';
import type { JoinRequest as _tally_v1_JoinRequest, JoinRequest__Output as _tally_v1_JoinRequest__Output } from '../../tally/v1/JoinRequest';
import type { Placement as _tally_v1_Placement, Placement__Output as _tally_v1_Placement__Output } from '../../tally/v1/Placement';
import type { SwitchoverRequest as _tally_v1_SwitchoverRequest, SwitchoverRequest__Output as _tally_v1_SwitchoverRequest__Output } from '../../tally/v1/SwitchoverRequest';

export interface ControllerClient extends grpc.Client {
  AddToInSync(argument: _tally_v1_InSyncChange, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  AddToInSync(argument: _tally_v1_InSyncChange, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  AddToInSync(argument: _tally_v1_InSyncChange, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  AddToInSync(argument: _tally_v1_InSyncChange, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  addToInSync(argument: _tally_v1_InSyncChange, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  addToInSync(argument: _tally_v1_InSyncChange, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  addToInSync(argument: _tally_v1_InSyncChange, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  addToInSync(argument: _tally_v1_InSyncChange, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  
  ForcePromote(argument: _tally_v1_ForcePromoteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  ForcePromote(argument: _tally_v1_ForcePromoteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  ForcePromote(argument: _tally_v1_ForcePromoteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  ForcePromote(argument: _tally_v1_ForcePromoteRequest, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  forcePromote(argument: _tally_v1_ForcePromoteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  forcePromote(argument: _tally_v1_ForcePromoteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  forcePromote(argument: _tally_v1_ForcePromoteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  forcePromote(argument: _tally_v1_ForcePromoteRequest, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  
  GetConfig(argument: _tally_v1_GetConfigRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  GetConfig(argument: _tally_v1_GetConfigRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  GetConfig(argument: _tally_v1_GetConfigRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  GetConfig(argument: _tally_v1_GetConfigRequest, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  getConfig(argument: _tally_v1_GetConfigRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  getConfig(argument: _tally_v1_GetConfigRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  getConfig(argument: _tally_v1_GetConfigRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  getConfig(argument: _tally_v1_GetConfigRequest, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  
  Join(argument: _tally_v1_JoinRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_Placement__Output>): grpc.ClientUnaryCall;
  Join(argument: _tally_v1_JoinRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_Placement__Output>): grpc.ClientUnaryCall;
  Join(argument: _tally_v1_JoinRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_Placement__Output>): grpc.ClientUnaryCall;
  Join(argument: _tally_v1_JoinRequest, callback: grpc.requestCallback<_tally_v1_Placement__Output>): grpc.ClientUnaryCall;
  join(argument: _tally_v1_JoinRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_Placement__Output>): grpc.ClientUnaryCall;
  join(argument: _tally_v1_JoinRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_Placement__Output>): grpc.ClientUnaryCall;
  join(argument: _tally_v1_JoinRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_Placement__Output>): grpc.ClientUnaryCall;
  join(argument: _tally_v1_JoinRequest, callback: grpc.requestCallback<_tally_v1_Placement__Output>): grpc.ClientUnaryCall;
  
  RemoveFromInSync(argument: _tally_v1_InSyncChange, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  RemoveFromInSync(argument: _tally_v1_InSyncChange, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  RemoveFromInSync(argument: _tally_v1_InSyncChange, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  RemoveFromInSync(argument: _tally_v1_InSyncChange, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  removeFromInSync(argument: _tally_v1_InSyncChange, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  removeFromInSync(argument: _tally_v1_InSyncChange, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  removeFromInSync(argument: _tally_v1_InSyncChange, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  removeFromInSync(argument: _tally_v1_InSyncChange, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  
  Switchover(argument: _tally_v1_SwitchoverRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  Switchover(argument: _tally_v1_SwitchoverRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  Switchover(argument: _tally_v1_SwitchoverRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  Switchover(argument: _tally_v1_SwitchoverRequest, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  switchover(argument: _tally_v1_SwitchoverRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  switchover(argument: _tally_v1_SwitchoverRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  switchover(argument: _tally_v1_SwitchoverRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  switchover(argument: _tally_v1_SwitchoverRequest, callback: grpc.requestCallback<_tally_v1_ClusterConfig__Output>): grpc.ClientUnaryCall;
  
}

export interface ControllerHandlers extends grpc.UntypedServiceImplementation {
  AddToInSync: grpc.handleUnaryCall<_tally_v1_InSyncChange__Output, _tally_v1_ClusterConfig>;
  
  ForcePromote: grpc.handleUnaryCall<_tally_v1_ForcePromoteRequest__Output, _tally_v1_ClusterConfig>;
  
  GetConfig: grpc.handleUnaryCall<_tally_v1_GetConfigRequest__Output, _tally_v1_ClusterConfig>;
  
  Join: grpc.handleUnaryCall<_tally_v1_JoinRequest__Output, _tally_v1_Placement>;
  
  RemoveFromInSync: grpc.handleUnaryCall<_tally_v1_InSyncChange__Output, _tally_v1_ClusterConfig>;
  
  Switchover: grpc.handleUnaryCall<_tally_v1_SwitchoverRequest__Output, _tally_v1_ClusterConfig>;
  
}

export interface ControllerDefinition extends grpc.ServiceDefinition {
  AddToInSync: MethodDefinition<_tally_v1_InSyncChange, _tally_v1_ClusterConfig, _tally_v1_InSyncChange__Output, _tally_v1_ClusterConfig__Output>
  ForcePromote: MethodDefinition<_tally_v1_ForcePromoteRequest, _tally_v1_ClusterConfig, _tally_v1_ForcePromoteRequest__Output, _tally_v1_ClusterConfig__Output>
  GetConfig: MethodDefinition<_tally_v1_GetConfigRequest, _tally_v1_ClusterConfig, _tally_v1_GetConfigRequest__Output, _tally_v1_ClusterConfig__Output>
  Join: MethodDefinition<_tally_v1_JoinRequest, _tally_v1_Placement, _tally_v1_JoinRequest__Output, _tally_v1_Placement__Output>
  RemoveFromInSync: MethodDefinition<_tally_v1_InSyncChange, _tally_v1_ClusterConfig, _tally_v1_InSyncChange__Output, _tally_v1_ClusterConfig__Output>
  Switchover: MethodDefinition<_tally_v1_SwitchoverRequest, _tally_v1_ClusterConfig, _tally_v1_SwitchoverRequest__Output, _tally_v1_ClusterConfig__Output>
}
