/**
 * gRPC server reflection on a real node, as non-Node tools (grpcurl, Postman, generated-code
 * workflows) use it: ServerReflectionInfo with file_by_filename for each proto file by its
 * import path, and file_containing_symbol; the descriptors carry the language options.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertBuilt,
  killChildren,
  removeTempDirs,
  type Server,
  startServe,
  tempDir,
} from './serve-process';

interface ReflectionResponse {
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] } | null;
  errorResponse?: { errorCode: number; errorMessage: string } | null;
}

interface FileDescriptor {
  name: string;
  package: string;
  service: Array<{ name: string; method: Array<{ name: string }> }>;
  messageType: Array<{ name: string }>;
  options?: {
    goPackage?: string;
    javaPackage?: string;
    javaMultipleFiles?: boolean;
    csharpNamespace?: string;
  } | null;
}

const reflectionProto = path.join(
  path.dirname(require.resolve('@grpc/reflection/package.json')),
  'build/proto/grpc/reflection/v1/reflection.proto',
);
const descriptorType = protoLoader.loadSync('google/protobuf/descriptor.proto')[
  'google.protobuf.FileDescriptorProto'
] as protoLoader.MessageTypeDefinition<object, object>;

function decodeFile(bytes: Buffer): FileDescriptor {
  return descriptorType.deserialize(bytes) as unknown as FileDescriptor;
}

/** One request on a ServerReflectionInfo stream (v1), its one response. */
function reflect(target: string, request: Record<string, string>): Promise<ReflectionResponse> {
  const definition = protoLoader.loadSync(reflectionProto, { keepCase: false, oneofs: true });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  const client = new loaded.grpc.reflection.v1.ServerReflection(
    target,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    ServerReflectionInfo(
      options: grpc.CallOptions,
    ): grpc.ClientDuplexStream<object, ReflectionResponse>;
  };
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo({ deadline: Date.now() + 10_000 });
    call.on('data', (res: ReflectionResponse) => {
      resolve(res);
      call.end();
    });
    call.on('error', reject);
    call.on('end', () => client.close());
    call.write(request);
  });
}

let server: Server;

beforeAll(async () => {
  assertBuilt();
  server = await startServe(path.join(await tempDir(), 'data'));
});
afterAll(async () => {
  await killChildren();
  await removeTempDirs();
});

describe('server reflection', () => {
  it.each([
    ['tally/v1/counter.proto', 'Counter', ['Allocate', 'AllocateStream'], 'AllocateRequest'],
    [
      'tally/v1/admin.proto',
      'Admin',
      ['Status', 'Checkpoint', 'Promote', 'StepDown'],
      'StatusResponse',
    ],
    ['tally/v1/replication.proto', 'Replication', ['Replicate'], 'Append'],
    ['tally/v1/controller.proto', 'Controller', ['GetConfig'], 'ClusterConfig'],
  ])(
    'file_by_filename %s answers that file, with its service and language options',
    async (file, service, methods, message) => {
      const res = await reflect(server.target, { fileByFilename: file });
      expect(res.errorResponse ?? null).toBeNull();
      const protos = res.fileDescriptorResponse?.fileDescriptorProto ?? [];
      expect(protos).toHaveLength(1);
      const descriptor = decodeFile(protos[0] as Buffer);
      expect(descriptor.name).toBe(file);
      expect(descriptor.package).toBe('tally.v1');
      expect(descriptor.service.map((s) => s.name)).toEqual([service]);
      expect(descriptor.service[0]?.method.map((m) => m.name)).toEqual(
        expect.arrayContaining(methods),
      );
      expect(descriptor.messageType.map((m) => m.name)).toContain(message);
      expect(descriptor.options).toMatchObject({
        goPackage: expect.stringMatching(/\/tally\/v1;tallyv1$/) as string,
        javaPackage: 'dev.tally.v1',
        javaMultipleFiles: true,
        csharpNamespace: 'Tally.V1',
      });
    },
  );

  it('file_containing_symbol tally.v1.Counter answers counter.proto; an unknown file is NOT_FOUND', async () => {
    const res = await reflect(server.target, { fileContainingSymbol: 'tally.v1.Counter' });
    const protos = res.fileDescriptorResponse?.fileDescriptorProto ?? [];
    expect(protos.map((p) => decodeFile(p).name)).toEqual(['tally/v1/counter.proto']);
    const missing = await reflect(server.target, { fileByFilename: 'tally_v1.proto' });
    expect(missing.errorResponse?.errorCode).toBe(grpc.status.NOT_FOUND);
  });
});
