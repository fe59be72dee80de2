// Original file: proto/tally/v1/admin.proto


export interface CheckpointRequest {
}

export interface CheckpointRequest__Output {
}
