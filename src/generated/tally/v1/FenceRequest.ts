// Original file: proto/tally/v1/admin.proto

import type { Long } from '@grpc/proto-loader';

export interface FenceRequest {
  'ballotN'?: (number | string | Long);
  'ballotId'?: (string);
}

export interface FenceRequest__Output {
  'ballotN': (string);
  'ballotId': (string);
}
