import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { AllocateRequest as _tally_v1_AllocateRequest, AllocateRequest__Output as _tally_v1_AllocateRequest__Output } from './tally/v1/AllocateRequest';
import type { AllocateResponse as _tally_v1_AllocateResponse, AllocateResponse__Output as _tally_v1_AllocateResponse__Output } from './tally/v1/AllocateResponse';
import type { CounterClient as _tally_v1_CounterClient, CounterDefinition as _tally_v1_CounterDefinition } from './tally/v1/Counter';
import type { StreamError as _tally_v1_StreamError, StreamError__Output as _tally_v1_StreamError__Output } from './tally/v1/StreamError';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  tally: {
    v1: {
      AllocateRequest: MessageTypeDefinition<_tally_v1_AllocateRequest, _tally_v1_AllocateRequest__Output>
      AllocateResponse: MessageTypeDefinition<_tally_v1_AllocateResponse, _tally_v1_AllocateResponse__Output>
      Counter: SubtypeConstructor<typeof grpc.Client, _tally_v1_CounterClient> & { service: _tally_v1_CounterDefinition }
      StreamError: MessageTypeDefinition<_tally_v1_StreamError, _tally_v1_StreamError__Output>
    }
  }
}

