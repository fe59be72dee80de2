// Original file: proto/tally/v1/replication.proto

import type { HelloReply as _tally_v1_HelloReply, HelloReply__Output as _tally_v1_HelloReply__Output } from '../../tally/v1/HelloReply';
import type { Ack as _tally_v1_Ack, Ack__Output as _tally_v1_Ack__Output } from '../../tally/v1/Ack';

export interface ReplicateResponse {
  'hello'?: (_tally_v1_HelloReply | null);
  'ack'?: (_tally_v1_Ack | null);
  'kind'?: "hello"|"ack";
}

export interface ReplicateResponse__Output {
  'hello'?: (_tally_v1_HelloReply__Output | null);
  'ack'?: (_tally_v1_Ack__Output | null);
  'kind'?: "hello"|"ack";
}
