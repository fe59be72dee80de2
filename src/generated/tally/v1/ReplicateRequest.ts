// Original file: proto/tally/v1/replication.proto

import type { Hello as _tally_v1_Hello, Hello__Output as _tally_v1_Hello__Output } from '../../tally/v1/Hello';
import type { Append as _tally_v1_Append, Append__Output as _tally_v1_Append__Output } from '../../tally/v1/Append';
import type { InstallSnapshot as _tally_v1_InstallSnapshot, InstallSnapshot__Output as _tally_v1_InstallSnapshot__Output } from '../../tally/v1/InstallSnapshot';

export interface ReplicateRequest {
  'hello'?: (_tally_v1_Hello | null);
  'append'?: (_tally_v1_Append | null);
  'installSnapshot'?: (_tally_v1_InstallSnapshot | null);
  'kind'?: "hello"|"append"|"installSnapshot";
}

export interface ReplicateRequest__Output {
  'hello'?: (_tally_v1_Hello__Output | null);
  'append'?: (_tally_v1_Append__Output | null);
  'installSnapshot'?: (_tally_v1_InstallSnapshot__Output | null);
  'kind'?: "hello"|"append"|"installSnapshot";
}
