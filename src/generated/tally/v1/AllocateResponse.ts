// Original file: proto/tally/v1/counter.proto

import type { StreamError as _tally_v1_StreamError, StreamError__Output as _tally_v1_StreamError__Output } from '../../tally/v1/StreamError';
import type { Long } from '@grpc/proto-loader';

export interface AllocateResponse {
  'first'?: (number | string | Long);
  'count'?: (number);
  'correlationId'?: (number | string | Long);
  'epoch'?: (number | string | Long);
  'index'?: (number | string | Long);
  'error'?: (_tally_v1_StreamError | null);
}

export interface AllocateResponse__Output {
  'first': (string);
  'count': (number);
  'correlationId': (string);
  'epoch': (string);
  'index': (string);
  'error': (_tally_v1_StreamError__Output | null);
}
