// Original file: proto/tally/v1/admin.proto

import type { Long } from '@grpc/proto-loader';

export interface PromoteRequest {
  'epoch'?: (number | string | Long);
  'standby'?: (string);
  'aloneApproved'?: (boolean);
  'force'?: (boolean);
  'skipAhead'?: (number | string | Long);
  'ballotN'?: (number | string | Long);
  'ballotId'?: (string);
}

export interface PromoteRequest__Output {
  'epoch': (string);
  'standby': (string);
  'aloneApproved': (boolean);
  'force': (boolean);
  'skipAhead': (string);
  'ballotN': (string);
  'ballotId': (string);
}
