// Original file: proto/tally/v1/controller.proto

import type { Long } from '@grpc/proto-loader';

export interface JoinRequest {
  'nodeId'?: (string);
  'incarnation'?: (string);
  'clusterId'?: (string);
  'epoch'?: (number | string | Long);
  'epochPrimary'?: (string);
  'role'?: (string);
  'lastIndex'?: (number | string | Long);
  'lastEpoch'?: (number | string | Long);
  'catchingUp'?: (boolean);
  'ballotN'?: (number | string | Long);
  'ballotId'?: (string);
}

export interface JoinRequest__Output {
  'nodeId': (string);
  'incarnation': (string);
  'clusterId': (string);
  'epoch': (string);
  'epochPrimary': (string);
  'role': (string);
  'lastIndex': (string);
  'lastEpoch': (string);
  'catchingUp': (boolean);
  'ballotN': (string);
  'ballotId': (string);
}
