// Original file: proto/tally/v1/admin.proto

import type { NamespaceStatus as _tally_v1_NamespaceStatus, NamespaceStatus__Output as _tally_v1_NamespaceStatus__Output } from '../../tally/v1/NamespaceStatus';
import type { ReplicationStatus as _tally_v1_ReplicationStatus, ReplicationStatus__Output as _tally_v1_ReplicationStatus__Output } from '../../tally/v1/ReplicationStatus';
import type { Long } from '@grpc/proto-loader';

export interface StatusResponse {
  'nodeId'?: (string);
  'role'?: (string);
  'epoch'?: (number | string | Long);
  'lastIndex'?: (number | string | Long);
  'namespaces'?: (_tally_v1_NamespaceStatus)[];
  'walBytes'?: (number | string | Long);
  'walSegments'?: (number);
  'checkpointIndex'?: (number | string | Long);
  'checkpointUnixMs'?: (number | string | Long);
  'state'?: (string);
  'version'?: (string);
  'dataDir'?: (string);
  'epochPrimary'?: (string);
  'replication'?: (_tally_v1_ReplicationStatus | null);
  'incarnation'?: (string);
  'clusterId'?: (string);
  'lastEpoch'?: (number | string | Long);
  'acknowledgedIndex'?: (number | string | Long);
  'acknowledgedEpoch'?: (number | string | Long);
  'writeStallMs'?: (number | string | Long);
  'idFloor'?: (number | string | Long);
  'clientAddress'?: (string);
  'promotingEpoch'?: (number | string | Long);
  'tailCut'?: (boolean);
  'ballotN'?: (number | string | Long);
  'ballotId'?: (string);
}

export interface StatusResponse__Output {
  'nodeId': (string);
  'role': (string);
  'epoch': (string);
  'lastIndex': (string);
  'namespaces': (_tally_v1_NamespaceStatus__Output)[];
  'walBytes': (string);
  'walSegments': (number);
  'checkpointIndex': (string);
  'checkpointUnixMs': (string);
  'state': (string);
  'version': (string);
  'dataDir': (string);
  'epochPrimary': (string);
  'replication': (_tally_v1_ReplicationStatus__Output | null);
  'incarnation': (string);
  'clusterId': (string);
  'lastEpoch': (string);
  'acknowledgedIndex': (string);
  'acknowledgedEpoch': (string);
  'writeStallMs': (string);
  'idFloor': (string);
  'clientAddress': (string);
  'promotingEpoch': (string);
  'tailCut': (boolean);
  'ballotN': (string);
  'ballotId': (string);
}
