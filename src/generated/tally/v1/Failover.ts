// Original file: proto/tally/v1/controller.proto

import type { Long } from '@grpc/proto-loader';

export interface Failover {
  'atUnixMs'?: (number | string | Long);
  'kind'?: (string);
  'fromNode'?: (string);
  'toNode'?: (string);
  'epoch'?: (number | string | Long);
  'durationMs'?: (number | string | Long);
  'reason'?: (string);
}

export interface Failover__Output {
  'atUnixMs': (string);
  'kind': (string);
  'fromNode': (string);
  'toNode': (string);
  'epoch': (string);
  'durationMs': (string);
  'reason': (string);
}
