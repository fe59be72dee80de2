// Original file: proto/tally/v1/admin.proto

import type { Long } from '@grpc/proto-loader';

export interface ReplicationStatus {
  'peer'?: (string);
  'state'?: (string);
  'ackIndex'?: (number | string | Long);
  'lagRecords'?: (number | string | Long);
  'lagSeconds'?: (number | string);
  'catchingUp'?: (boolean);
}

export interface ReplicationStatus__Output {
  'peer': (string);
  'state': (string);
  'ackIndex': (string);
  'lagRecords': (string);
  'lagSeconds': (number);
  'catchingUp': (boolean);
}
