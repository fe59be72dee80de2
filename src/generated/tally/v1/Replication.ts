// Original file: proto/tally/v1/replication.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ReplicateRequest as _tally_v1_ReplicateRequest, ReplicateRequest__Output as _tally_v1_ReplicateRequest__Output } from '../../tally/v1/ReplicateRequest';
import type { ReplicateResponse as _tally_v1_ReplicateResponse, ReplicateResponse__Output as _tally_v1_ReplicateResponse__Output } from '../../tally/v1/ReplicateResponse';

export interface ReplicationClient extends grpc.Client {
  Replicate(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_ReplicateRequest, _tally_v1_ReplicateResponse__Output>;
  Replicate(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_ReplicateRequest, _tally_v1_ReplicateResponse__Output>;
  replicate(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_ReplicateRequest, _tally_v1_ReplicateResponse__Output>;
  replicate(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tally_v1_ReplicateRequest, _tally_v1_ReplicateResponse__Output>;
  
}

export interface ReplicationHandlers extends grpc.UntypedServiceImplementation {
  Replicate: grpc.handleBidiStreamingCall<_tally_v1_ReplicateRequest__Output, _tally_v1_ReplicateResponse>;
  
}

export interface ReplicationDefinition extends grpc.ServiceDefinition {
  Replicate: MethodDefinition<_tally_v1_ReplicateRequest, _tally_v1_ReplicateResponse, _tally_v1_ReplicateRequest__Output, _tally_v1_ReplicateResponse__Output>
}
