// Original file: proto/tally/v1/counter.proto


export interface StreamError {
  'code'?: (number);
  'message'?: (string);
}

export interface StreamError__Output {
  'code': (number);
  'message': (string);
}
