#!/usr/bin/env node
/**
 * The container HEALTHCHECK: one grpc.health.v1.Health/Check call, exit 0 when SERVING.
 *
 *   node dist/cli/healthcheck.js [HOST:PORT] [SERVICE]
 *
 * The address defaults to this container's own listen port (TALLY_LISTEN for a node,
 * TALLY_CONTROLLER_LISTEN when PID 1 runs `controller`; 0.0.0.0 is dialled as 127.0.0.1;
 * TALLY_HEALTHCHECK_TARGET overrides), the service to
 * "" (the process is fine; a standby is healthy too). SERVICE tally.v1.Counter asks whether
 * this node serves allocations (the primary). Kept small: no commander, no proto files.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { dialHost, parseHostPort } from '../server/listen';

const deadlineMs = Number(process.env.TALLY_HEALTHCHECK_TIMEOUT_MS ?? 3000);

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

/** In a container, PID 1 (tini) runs `… main.js controller` or `… main.js serve`. */
function runsController(): boolean {
  try {
    const args = readFileSync('/proc/1/cmdline', 'utf8').split('\0');
    return args.includes('controller');
  } catch {
    return false;
  }
}

function defaultTarget(): string {
  const listen =
    process.env.TALLY_HEALTHCHECK_TARGET ??
    (runsController() ? process.env.TALLY_CONTROLLER_LISTEN : process.env.TALLY_LISTEN) ??
    '127.0.0.1:7400';
  const { host, port } = parseHostPort(listen);
  return `${dialHost(host)}:${port}`;
}

function check(target: string, service: string): Promise<string> {
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

async function main(): Promise<number> {
  const [targetArg, serviceArg] = process.argv.slice(2);
  const target = targetArg ?? defaultTarget();
  const service = serviceArg ?? process.env.TALLY_HEALTHCHECK_SERVICE ?? '';
  try {
    const status = await check(target, service);
    process.stdout.write(`healthcheck: ${target} ${service || '(server)'} ${status}\n`);
    return status === 'SERVING' ? 0 : 1;
  } catch (err) {
    process.stdout.write(`healthcheck: ${target}: ${(err as Error).message}\n`);
    return 1;
  }
}

void main().then((code) => process.exit(code));
