// Original file: proto/tally/v1/controller.proto


export interface GetConfigRequest {
}

export interface GetConfigRequest__Output {
}
