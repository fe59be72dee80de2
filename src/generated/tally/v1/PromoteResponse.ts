// Original file: proto/tally/v1/admin.proto

import type { Long } from '@grpc/proto-loader';

export interface PromoteResponse {
  'epoch'?: (number | string | Long);
  'role'?: (string);
  'lastIndex'?: (number | string | Long);
}

export interface PromoteResponse__Output {
  'epoch': (string);
  'role': (string);
  'lastIndex': (string);
}
