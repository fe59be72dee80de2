// Original file: proto/tally/v1/replication.proto

import type { Long } from '@grpc/proto-loader';

export interface Hello {
  'protocolVersion'?: (number);
  'primaryId'?: (string);
  'epoch'?: (number | string | Long);
  'primaryAddress'?: (string);
  'epochNonce'?: (string);
  'clusterId'?: (string);
  'primaryIncarnation'?: (string);
  'idFloor'?: (number | string | Long);
}

export interface Hello__Output {
  'protocolVersion': (number);
  'primaryId': (string);
  'epoch': (string);
  'primaryAddress': (string);
  'epochNonce': (string);
  'clusterId': (string);
  'primaryIncarnation': (string);
  'idFloor': (string);
}
