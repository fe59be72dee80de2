/**
 * Loads the tally.v1 protos at run time with proto-loader. The proto directory is resolved
 * from this file (`../../proto`), which is the package root's proto/ from both src/server
 * and dist/server, so tests (ts) and the CLI (js) load the same files.
 *
 * Each file is loaded on its own and its file descriptor named by its import path
 * (`tally/v1/counter.proto`): proto-loader describes everything it loads together as one file
 * per package (`tally_v1.proto`), and server reflection answers file_by_filename, and names
 * files in every answer, from these descriptors — so tools that ask for a file by the name
 * they know (grpcurl, Postman, code generators) found nothing.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as AdminProto } from '../generated/admin';
import type { ProtoGrpcType as ControllerProto } from '../generated/controller';
import type { ProtoGrpcType as CounterProto } from '../generated/counter';
import type { ProtoGrpcType as ReplicationProto } from '../generated/replication';

import { loaderOptions, protoDir } from '../core/wire';

export { loaderOptions, protoDir };
export const protoFiles = [
  'tally/v1/counter.proto',
  'tally/v1/admin.proto',
  'tally/v1/replication.proto',
  'tally/v1/controller.proto',
];

export type TallyProto = CounterProto & AdminProto & ReplicationProto & ControllerProto;

export interface LoadedProtos {
  packageDefinition: protoLoader.PackageDefinition;
  tally: TallyProto['tally'];
}

let loaded: LoadedProtos | null = null;

/** The protos, loaded once per process (the definitions are never changed after loading). */
export function loadProtos(): LoadedProtos {
  if (loaded === null) {
    const packageDefinition = reflectablePackageDefinition();
    const grpcObject = grpc.loadPackageDefinition(packageDefinition) as unknown as TallyProto;
    loaded = { packageDefinition, tally: grpcObject.tally };
  }
  return loaded;
}

/**
 * Every tally.v1 proto file, each described by its own file descriptor named by its import
 * path. The files import nothing: a file that imported another would be described together
 * with it, and this throws rather than name a merged descriptor after one of them.
 */
export function reflectablePackageDefinition(): protoLoader.PackageDefinition {
  const merged: protoLoader.PackageDefinition = {};
  for (const file of protoFiles) {
    const definition = protoLoader.loadSync(file, loaderOptions);
    const described = descriptorsOf(definition);
    if (described.length !== 1) {
      throw new Error(`proto: ${file} is described by ${described.length} file descriptors, not 1`);
    }
    const named = [renameFileDescriptor(described[0] as Buffer, file)];
    for (const value of Object.values(definition)) setDescriptors(value, named);
    Object.assign(merged, definition);
  }
  return merged;
}

type AnyDefinition = protoLoader.PackageDefinition[string];

function descriptorsOf(definition: protoLoader.PackageDefinition): Buffer[] {
  for (const value of Object.values(definition)) {
    if ('fileDescriptorProtos' in value) return value.fileDescriptorProtos as Buffer[];
  }
  return [];
}

/** Messages and enums carry the file descriptors, and so do a service's request/response types. */
function setDescriptors(value: AnyDefinition, descriptors: Buffer[]): void {
  if ('fileDescriptorProtos' in value) {
    value.fileDescriptorProtos = descriptors;
    return;
  }
  for (const method of Object.values(value as protoLoader.ServiceDefinition)) {
    method.requestType.fileDescriptorProtos = descriptors;
    method.responseType.fileDescriptorProtos = descriptors;
  }
}

let fileDescriptorType: protoLoader.MessageTypeDefinition<object, object> | undefined;

/** An encoded google.protobuf.FileDescriptorProto with its `name` set to `name`. */
function renameFileDescriptor(encoded: Buffer, name: string): Buffer {
  fileDescriptorType ??= protoLoader.loadSync('google/protobuf/descriptor.proto', {
    keepCase: true,
  })['google.protobuf.FileDescriptorProto'] as protoLoader.MessageTypeDefinition<object, object>;
  const message = fileDescriptorType.deserialize(encoded) as Record<string, unknown>;
  return fileDescriptorType.serialize({ ...message, name });
}
