// Original file: proto/tally/v1/controller.proto

import type { Long } from '@grpc/proto-loader';

export interface ForcePromoteRequest {
  'nodeId'?: (string);
  'skipAhead'?: (number | string | Long);
}

export interface ForcePromoteRequest__Output {
  'nodeId': (string);
  'skipAhead': (string);
}
