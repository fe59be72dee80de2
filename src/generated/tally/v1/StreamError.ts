// Original file: proto/tally/v1/counter.proto


export interface StreamError {
  'code'?: (number);
  'message'?: (string);
  'primaryAddress'?: (string);
}

export interface StreamError__Output {
  'code': (number);
  'message': (string);
  'primaryAddress': (string);
}
