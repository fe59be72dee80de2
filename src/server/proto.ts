/**
 * Loads the tally.v1 protos at run time with proto-loader. The proto directory is resolved
 * from this file (`../../proto`), which is the package root's proto/ from both src/server
 * and dist/server, so tests (ts) and the CLI (js) load the same files.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as AdminProto } from '../generated/admin';
import type { ProtoGrpcType as ControllerProto } from '../generated/controller';
import type { ProtoGrpcType as CounterProto } from '../generated/counter';
import type { ProtoGrpcType as ReplicationProto } from '../generated/replication';

export const protoDir = path.join(__dirname, '..', '..', 'proto');
export const protoFiles = [
  'tally/v1/counter.proto',
  'tally/v1/admin.proto',
  'tally/v1/replication.proto',
  'tally/v1/controller.proto',
];

/** Options matching `npm run gen:types`, so the generated types describe what we get. */
export const loaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [protoDir],
};

export type TallyProto = CounterProto & AdminProto & ReplicationProto & ControllerProto;

export interface LoadedProtos {
  packageDefinition: protoLoader.PackageDefinition;
  tally: TallyProto['tally'];
}

export function loadProtos(): LoadedProtos {
  const packageDefinition = protoLoader.loadSync(protoFiles, loaderOptions);
  const loaded = grpc.loadPackageDefinition(packageDefinition) as unknown as TallyProto;
  return { packageDefinition, tally: loaded.tally };
}
