// Original file: proto/tally/v1/controller.proto

import type { Long } from '@grpc/proto-loader';

export interface Member {
  'id'?: (string);
  'incarnation'?: (string);
  'vouchedEpoch'?: (number | string | Long);
  'vouchedIndex'?: (number | string | Long);
}

export interface Member__Output {
  'id': (string);
  'incarnation': (string);
  'vouchedEpoch': (string);
  'vouchedIndex': (string);
}
