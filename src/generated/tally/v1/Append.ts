// Original file: proto/tally/v1/replication.proto

import type { Long } from '@grpc/proto-loader';

export interface Append {
  'epoch'?: (number | string | Long);
  'prevIndex'?: (number | string | Long);
  'prevEpoch'?: (number | string | Long);
  'recordCount'?: (number);
  'records'?: (Buffer | Uint8Array | string);
  'primaryLastIndex'?: (number | string | Long);
  'lastEpoch'?: (number | string | Long);
  'commitIndex'?: (number | string | Long);
}

export interface Append__Output {
  'epoch': (string);
  'prevIndex': (string);
  'prevEpoch': (string);
  'recordCount': (number);
  'records': (Buffer);
  'primaryLastIndex': (string);
  'lastEpoch': (string);
  'commitIndex': (string);
}
