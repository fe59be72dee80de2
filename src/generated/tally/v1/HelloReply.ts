// Original file: proto/tally/v1/replication.proto

import type { EpochStart as _tally_v1_EpochStart, EpochStart__Output as _tally_v1_EpochStart__Output } from '../../tally/v1/EpochStart';
import type { Long } from '@grpc/proto-loader';

export interface HelloReply {
  'nodeId'?: (string);
  'firstIndex'?: (number | string | Long);
  'lastIndex'?: (number | string | Long);
  'epochs'?: (_tally_v1_EpochStart)[];
  'snapshotIndex'?: (number | string | Long);
  'snapshotEpoch'?: (number | string | Long);
  'acknowledgedFloor'?: (number | string | Long);
  'idFloor'?: (number | string | Long);
  'confirmedFloor'?: (number | string | Long);
}

export interface HelloReply__Output {
  'nodeId': (string);
  'firstIndex': (string);
  'lastIndex': (string);
  'epochs': (_tally_v1_EpochStart__Output)[];
  'snapshotIndex': (string);
  'snapshotEpoch': (string);
  'acknowledgedFloor': (string);
  'idFloor': (string);
  'confirmedFloor': (string);
}
