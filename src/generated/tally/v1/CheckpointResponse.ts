// Original file: proto/tally/v1/admin.proto

import type { Long } from '@grpc/proto-loader';

export interface CheckpointResponse {
  'index'?: (number | string | Long);
  'segmentsRemoved'?: (number);
  'durationUs'?: (number | string | Long);
  'scheduled'?: (boolean);
  'acknowledgedIndex'?: (number | string | Long);
  'nodeId'?: (string);
}

export interface CheckpointResponse__Output {
  'index': (string);
  'segmentsRemoved': (number);
  'durationUs': (string);
  'scheduled': (boolean);
  'acknowledgedIndex': (string);
  'nodeId': (string);
}
