/**
 * A grpc.health.v1 Check without proto files: the container HEALTHCHECK, tests and scripts
 * need one call, not a protobuf toolchain.
 */
import * as grpc from '@grpc/grpc-js';

/** HealthCheckRequest { string service = 1; } */
function encodeRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  if (name.length === 0) return Buffer.alloc(0);
  if (name.length > 127) throw new Error('healthcheck: service name too long');
  return Buffer.concat([Buffer.from([0x0a, name.length]), name]);
}

const statusNames = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** HealthCheckResponse { ServingStatus status = 1; } — an empty message is UNKNOWN. */
function decodeStatus(bytes: Buffer): string {
  // SERVING etc. are single-byte varints; an empty message (status 0) is UNKNOWN.
  if (bytes.length >= 2 && bytes[0] === 0x08) return statusNames[bytes[1] as number] ?? 'UNKNOWN';
  return 'UNKNOWN';
}

/**
 * One grpc.health.v1.Health/Check call: the status name (SERVING, NOT_SERVING, …); rejects
 * with `CODE: details` when the call fails.
 */
export function checkHealth(target: string, service: string, deadlineMs = 3000): Promise<string> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (s: string) => encodeRequest(s),
      (b: Buffer) => decodeStatus(b),
      service,
      { deadline: Date.now() + deadlineMs },
      (err, status) => {
        client.close();
        if (err) reject(new Error(`${grpc.status[err.code] ?? err.code}: ${err.details}`));
        else resolve(status ?? 'UNKNOWN');
      },
    );
  });
}
