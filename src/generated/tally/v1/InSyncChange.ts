// Original file: proto/tally/v1/controller.proto

import type { Long } from '@grpc/proto-loader';

export interface InSyncChange {
  'primaryId'?: (string);
  'epoch'?: (number | string | Long);
  'standbyId'?: (string);
  'primaryIncarnation'?: (string);
  'acknowledgedIndex'?: (number | string | Long);
  'acknowledgedEpoch'?: (number | string | Long);
  'seq'?: (number | string | Long);
}

export interface InSyncChange__Output {
  'primaryId': (string);
  'epoch': (string);
  'standbyId': (string);
  'primaryIncarnation': (string);
  'acknowledgedIndex': (string);
  'acknowledgedEpoch': (string);
  'seq': (string);
}
