// Original file: proto/tally/v1/admin.proto

import type { Long } from '@grpc/proto-loader';

export interface NamespaceStatus {
  'name'?: (string);
  'lastId'?: (number | string | Long);
}

export interface NamespaceStatus__Output {
  'name': (string);
  'lastId': (string);
}
