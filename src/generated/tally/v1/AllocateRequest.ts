// Original file: proto/tally/v1/counter.proto

import type { Long } from '@grpc/proto-loader';

export interface AllocateRequest {
  'namespace'?: (string);
  'count'?: (number);
  'correlationId'?: (number | string | Long);
}

export interface AllocateRequest__Output {
  'namespace': (string);
  'count': (number);
  'correlationId': (string);
}
