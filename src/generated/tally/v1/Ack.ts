// Original file: proto/tally/v1/replication.proto

import type { Long } from '@grpc/proto-loader';

export interface Ack {
  'durableIndex'?: (number | string | Long);
}

export interface Ack__Output {
  'durableIndex': (string);
}
