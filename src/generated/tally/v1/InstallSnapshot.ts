// Original file: proto/tally/v1/replication.proto

import type { SnapshotCounter as _tally_v1_SnapshotCounter, SnapshotCounter__Output as _tally_v1_SnapshotCounter__Output } from '../../tally/v1/SnapshotCounter';
import type { EpochStart as _tally_v1_EpochStart, EpochStart__Output as _tally_v1_EpochStart__Output } from '../../tally/v1/EpochStart';
import type { Long } from '@grpc/proto-loader';

export interface InstallSnapshot {
  'epoch'?: (number | string | Long);
  'index'?: (number | string | Long);
  'indexEpoch'?: (number | string | Long);
  'counters'?: (_tally_v1_SnapshotCounter)[];
  'idFloor'?: (number | string | Long);
  'epochs'?: (_tally_v1_EpochStart)[];
}

export interface InstallSnapshot__Output {
  'epoch': (string);
  'index': (string);
  'indexEpoch': (string);
  'counters': (_tally_v1_SnapshotCounter__Output)[];
  'idFloor': (string);
  'epochs': (_tally_v1_EpochStart__Output)[];
}
