// Original file: proto/tally/v1/admin.proto

import type { Long } from '@grpc/proto-loader';

export interface StepDownResponse {
  'lastIndex'?: (number | string | Long);
  'epoch'?: (number | string | Long);
}

export interface StepDownResponse__Output {
  'lastIndex': (string);
  'epoch': (string);
}
