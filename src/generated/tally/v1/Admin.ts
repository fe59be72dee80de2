// Original file: proto/tally/v1/admin.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CheckpointRequest as _tally_v1_CheckpointRequest, CheckpointRequest__Output as _tally_v1_CheckpointRequest__Output } from '../../tally/v1/CheckpointRequest';
import type { CheckpointResponse as _tally_v1_CheckpointResponse, CheckpointResponse__Output as _tally_v1_CheckpointResponse__Output } from '../../tally/v1/CheckpointResponse';
import type { FenceRequest as _tally_v1_FenceRequest, FenceRequest__Output as _tally_v1_FenceRequest__Output } from '../../tally/v1/FenceRequest';
import type { PromoteRequest as _tally_v1_PromoteRequest, PromoteRequest__Output as _tally_v1_PromoteRequest__Output } from '../../tally/v1/PromoteRequest';
import type { PromoteResponse as _tally_v1_PromoteResponse, PromoteResponse__Output as _tally_v1_PromoteResponse__Output } from '../../tally/v1/PromoteResponse';
import type { StatusRequest as _tally_v1_StatusRequest, StatusRequest__Output as _tally_v1_StatusRequest__Output } from '../../tally/v1/StatusRequest';
import type { StatusResponse as _tally_v1_StatusResponse, StatusResponse__Output as _tally_v1_StatusResponse__Output } from '../../tally/v1/StatusResponse';
import type { StepDownRequest as _tally_v1_StepDownRequest, StepDownRequest__Output as _tally_v1_StepDownRequest__Output } from '../../tally/v1/StepDownRequest';
import type { StepDownResponse as _tally_v1_StepDownResponse, StepDownResponse__Output as _tally_v1_StepDownResponse__Output } from '../../tally/v1/StepDownResponse';

export interface AdminClient extends grpc.Client {
  Checkpoint(argument: _tally_v1_CheckpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_CheckpointResponse__Output>): grpc.ClientUnaryCall;
  Checkpoint(argument: _tally_v1_CheckpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_CheckpointResponse__Output>): grpc.ClientUnaryCall;
  Checkpoint(argument: _tally_v1_CheckpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_CheckpointResponse__Output>): grpc.ClientUnaryCall;
  Checkpoint(argument: _tally_v1_CheckpointRequest, callback: grpc.requestCallback<_tally_v1_CheckpointResponse__Output>): grpc.ClientUnaryCall;
  checkpoint(argument: _tally_v1_CheckpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_CheckpointResponse__Output>): grpc.ClientUnaryCall;
  checkpoint(argument: _tally_v1_CheckpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_CheckpointResponse__Output>): grpc.ClientUnaryCall;
  checkpoint(argument: _tally_v1_CheckpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_CheckpointResponse__Output>): grpc.ClientUnaryCall;
  checkpoint(argument: _tally_v1_CheckpointRequest, callback: grpc.requestCallback<_tally_v1_CheckpointResponse__Output>): grpc.ClientUnaryCall;
  
  Fence(argument: _tally_v1_FenceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  Fence(argument: _tally_v1_FenceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  Fence(argument: _tally_v1_FenceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  Fence(argument: _tally_v1_FenceRequest, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  fence(argument: _tally_v1_FenceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  fence(argument: _tally_v1_FenceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  fence(argument: _tally_v1_FenceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  fence(argument: _tally_v1_FenceRequest, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  
  Promote(argument: _tally_v1_PromoteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_PromoteResponse__Output>): grpc.ClientUnaryCall;
  Promote(argument: _tally_v1_PromoteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_PromoteResponse__Output>): grpc.ClientUnaryCall;
  Promote(argument: _tally_v1_PromoteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_PromoteResponse__Output>): grpc.ClientUnaryCall;
  Promote(argument: _tally_v1_PromoteRequest, callback: grpc.requestCallback<_tally_v1_PromoteResponse__Output>): grpc.ClientUnaryCall;
  promote(argument: _tally_v1_PromoteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_PromoteResponse__Output>): grpc.ClientUnaryCall;
  promote(argument: _tally_v1_PromoteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_PromoteResponse__Output>): grpc.ClientUnaryCall;
  promote(argument: _tally_v1_PromoteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_PromoteResponse__Output>): grpc.ClientUnaryCall;
  promote(argument: _tally_v1_PromoteRequest, callback: grpc.requestCallback<_tally_v1_PromoteResponse__Output>): grpc.ClientUnaryCall;
  
  Status(argument: _tally_v1_StatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _tally_v1_StatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _tally_v1_StatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _tally_v1_StatusRequest, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _tally_v1_StatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _tally_v1_StatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _tally_v1_StatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _tally_v1_StatusRequest, callback: grpc.requestCallback<_tally_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  
  StepDown(argument: _tally_v1_StepDownRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StepDownResponse__Output>): grpc.ClientUnaryCall;
  StepDown(argument: _tally_v1_StepDownRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_StepDownResponse__Output>): grpc.ClientUnaryCall;
  StepDown(argument: _tally_v1_StepDownRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StepDownResponse__Output>): grpc.ClientUnaryCall;
  StepDown(argument: _tally_v1_StepDownRequest, callback: grpc.requestCallback<_tally_v1_StepDownResponse__Output>): grpc.ClientUnaryCall;
  stepDown(argument: _tally_v1_StepDownRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StepDownResponse__Output>): grpc.ClientUnaryCall;
  stepDown(argument: _tally_v1_StepDownRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_StepDownResponse__Output>): grpc.ClientUnaryCall;
  stepDown(argument: _tally_v1_StepDownRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_StepDownResponse__Output>): grpc.ClientUnaryCall;
  stepDown(argument: _tally_v1_StepDownRequest, callback: grpc.requestCallback<_tally_v1_StepDownResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface AdminHandlers extends grpc.UntypedServiceImplementation {
  Checkpoint: grpc.handleUnaryCall<_tally_v1_CheckpointRequest__Output, _tally_v1_CheckpointResponse>;
  
  Fence: grpc.handleUnaryCall<_tally_v1_FenceRequest__Output, _tally_v1_StatusResponse>;
  
  Promote: grpc.handleUnaryCall<_tally_v1_PromoteRequest__Output, _tally_v1_PromoteResponse>;
  
  Status: grpc.handleUnaryCall<_tally_v1_StatusRequest__Output, _tally_v1_StatusResponse>;
  
  StepDown: grpc.handleUnaryCall<_tally_v1_StepDownRequest__Output, _tally_v1_StepDownResponse>;
  
}

export interface AdminDefinition extends grpc.ServiceDefinition {
  Checkpoint: MethodDefinition<_tally_v1_CheckpointRequest, _tally_v1_CheckpointResponse, _tally_v1_CheckpointRequest__Output, _tally_v1_CheckpointResponse__Output>
  Fence: MethodDefinition<_tally_v1_FenceRequest, _tally_v1_StatusResponse, _tally_v1_FenceRequest__Output, _tally_v1_StatusResponse__Output>
  Promote: MethodDefinition<_tally_v1_PromoteRequest, _tally_v1_PromoteResponse, _tally_v1_PromoteRequest__Output, _tally_v1_PromoteResponse__Output>
  Status: MethodDefinition<_tally_v1_StatusRequest, _tally_v1_StatusResponse, _tally_v1_StatusRequest__Output, _tally_v1_StatusResponse__Output>
  StepDown: MethodDefinition<_tally_v1_StepDownRequest, _tally_v1_StepDownResponse, _tally_v1_StepDownRequest__Output, _tally_v1_StepDownResponse__Output>
}
