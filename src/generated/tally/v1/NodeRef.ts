// Original file: proto/tally/v1/controller.proto


export interface NodeRef {
  'id'?: (string);
  'address'?: (string);
  'clientAddress'?: (string);
}

export interface NodeRef__Output {
  'id': (string);
  'address': (string);
  'clientAddress': (string);
}
