// Original file: proto/tally/v1/controller.proto

import type { NodeRef as _tally_v1_NodeRef, NodeRef__Output as _tally_v1_NodeRef__Output } from '../../tally/v1/NodeRef';
import type { ClusterConfig as _tally_v1_ClusterConfig, ClusterConfig__Output as _tally_v1_ClusterConfig__Output } from '../../tally/v1/ClusterConfig';
import type { Long } from '@grpc/proto-loader';

export interface Placement {
  'role'?: (string);
  'standby'?: (_tally_v1_NodeRef | null);
  'aloneApproved'?: (boolean);
  'clusterId'?: (string);
  'config'?: (_tally_v1_ClusterConfig | null);
  'catchingUp'?: (boolean);
  'ballotN'?: (number | string | Long);
  'ballotId'?: (string);
}

export interface Placement__Output {
  'role': (string);
  'standby': (_tally_v1_NodeRef__Output | null);
  'aloneApproved': (boolean);
  'clusterId': (string);
  'config': (_tally_v1_ClusterConfig__Output | null);
  'catchingUp': (boolean);
  'ballotN': (string);
  'ballotId': (string);
}
