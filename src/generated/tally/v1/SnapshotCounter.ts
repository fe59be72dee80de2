// Original file: proto/tally/v1/replication.proto

import type { Long } from '@grpc/proto-loader';

export interface SnapshotCounter {
  'namespace'?: (string);
  'lastId'?: (number | string | Long);
}

export interface SnapshotCounter__Output {
  'namespace': (string);
  'lastId': (string);
}
