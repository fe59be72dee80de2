// Original file: proto/tally/v1/replication.proto

import type { Long } from '@grpc/proto-loader';

export interface EpochStart {
  'epoch'?: (number | string | Long);
  'index'?: (number | string | Long);
}

export interface EpochStart__Output {
  'epoch': (string);
  'index': (string);
}
