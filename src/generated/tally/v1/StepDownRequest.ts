// Original file: proto/tally/v1/admin.proto

import type { Long } from '@grpc/proto-loader';

export interface StepDownRequest {
  'epoch'?: (number | string | Long);
}

export interface StepDownRequest__Output {
  'epoch': (string);
}
