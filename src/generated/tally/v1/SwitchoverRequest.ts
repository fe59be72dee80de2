// Original file: proto/tally/v1/controller.proto


export interface SwitchoverRequest {
}

export interface SwitchoverRequest__Output {
}
