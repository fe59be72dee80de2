// Original file: proto/tally/v1/controller.proto

import type { NodeRef as _tally_v1_NodeRef, NodeRef__Output as _tally_v1_NodeRef__Output } from '../../tally/v1/NodeRef';
import type { Failover as _tally_v1_Failover, Failover__Output as _tally_v1_Failover__Output } from '../../tally/v1/Failover';
import type { Member as _tally_v1_Member, Member__Output as _tally_v1_Member__Output } from '../../tally/v1/Member';
import type { Long } from '@grpc/proto-loader';

export interface ClusterConfig {
  'version'?: (number | string | Long);
  'epoch'?: (number | string | Long);
  'primary'?: (_tally_v1_NodeRef | null);
  'standby'?: (_tally_v1_NodeRef | null);
  'inSync'?: (string)[];
  'lastFailover'?: (_tally_v1_Failover | null);
  'promoting'?: (boolean);
  'clusterId'?: (string);
  'members'?: (_tally_v1_Member)[];
  'blocked'?: (string);
}

export interface ClusterConfig__Output {
  'version': (string);
  'epoch': (string);
  'primary': (_tally_v1_NodeRef__Output | null);
  'standby': (_tally_v1_NodeRef__Output | null);
  'inSync': (string)[];
  'lastFailover': (_tally_v1_Failover__Output | null);
  'promoting': (boolean);
  'clusterId': (string);
  'members': (_tally_v1_Member__Output)[];
  'blocked': (string);
}
