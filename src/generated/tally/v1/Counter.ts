// Original file: proto/tally/v1/counter.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AllocateRequest as _tally_v1_AllocateRequest, AllocateRequest__Output as _tally_v1_AllocateRequest__Output } from '../../tally/v1/AllocateRequest';
import type { AllocateResponse as _tally_v1_AllocateResponse, AllocateResponse__Output as _tally_v1_AllocateResponse__Output } from '../../tally/v1/AllocateResponse';

export interface CounterClient extends grpc.Client {
  Allocate(argument: _tally_v1_AllocateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_AllocateResponse__Output>): grpc.ClientUnaryCall;
  Allocate(argument: _tally_v1_AllocateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_AllocateResponse__Output>): grpc.ClientUnaryCall;
  Allocate(argument: _tally_v1_AllocateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_AllocateResponse__Output>): grpc.ClientUnaryCall;
  Allocate(argument: _tally_v1_AllocateRequest, callback: grpc.requestCallback<_tally_v1_AllocateResponse__Output>): grpc.ClientUnaryCall;
  allocate(argument: _tally_v1_AllocateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_AllocateResponse__Output>): grpc.ClientUnaryCall;
  allocate(argument: _tally_v1_AllocateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tally_v1_AllocateResponse__Output>): grpc.ClientUnaryCall;
  allocate(argument: _tally_v1_AllocateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tally_v1_AllocateResponse__Output>): grpc.ClientUnaryCall;
  allocate(argument: _tally_v1_AllocateRequest, callback: grpc.requestCallback<_tally_v1_AllocateResponse__Output>): grpc.ClientUnaryCall;
  
  AllocateStream(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_AllocateRequest, _tally_v1_AllocateResponse__Output>;
  AllocateStream(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_AllocateRequest, _tally_v1_AllocateResponse__Output>;
  allocateStream(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_AllocateRequest, _tally_v1_AllocateResponse__Output>;
  allocateStream(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_AllocateRequest, _tally_v1_AllocateResponse__Output>;
  
}

export interface CounterHandlers extends grpc.UntypedServiceImplementation {
  Allocate: grpc.handleUnaryCall<_tally_v1_AllocateRequest__Output, _tally_v1_AllocateResponse>;
  
  AllocateStream: grpc.handleBidiStreamingCall<_tally_v1_AllocateRequest__Output, _tally_v1_AllocateResponse>;
  
}

export interface CounterDefinition extends grpc.ServiceDefinition {
  Allocate: MethodDefinition<_tally_v1_AllocateRequest, _tally_v1_AllocateResponse, _tally_v1_AllocateRequest__Output, _tally_v1_AllocateResponse__Output>
  AllocateStream: MethodDefinition<_tally_v1_AllocateRequest, _tally_v1_AllocateResponse, _tally_v1_AllocateRequest__Output, _tally_v1_AllocateResponse__Output>
}
