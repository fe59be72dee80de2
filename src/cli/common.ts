/**
 * Shared pieces of the `tally` subcommands: flag parsers, the error type that carries an
 * exit code, and gRPC client plumbing.
 */
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError, Option } from 'commander';
import { parseHostPort } from '../server/listen';
import { loadProtos } from '../server/proto';
import { statusName } from '../server/status';
import type { AdminClient } from '../generated/tally/v1/Admin';
import type { CounterClient } from '../generated/tally/v1/Counter';

/** Exit codes: 1 = the operation failed, 2 = the command line was wrong. */
export const exitFailure = 1;
export const exitUsage = 2;

/** A failure the CLI reports as one `tally: …` line on stderr, then exits with exitCode. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = exitFailure,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function hostPortArg(value: string): string {
  try {
    parseHostPort(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

export function integerArg(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
    if (!(Number.isSafeInteger(n) && n >= min && n <= max)) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}

export const uint32Max = 0xffff_ffff;

export function targetOption(): Option {
  return new Option('--target <host:port>', 'address of a tally node')
    .env('TALLY_TARGET')
    .default('127.0.0.1:7400')
    .argParser(hostPortArg);
}

export function deadlineOption(): Option {
  return new Option('--deadline-ms <ms>', 'give up after this many milliseconds')
    .default(5000)
    .argParser(integerArg(1, 3_600_000));
}

export function counterClient(target: string): CounterClient {
  const { tally } = loadProtos();
  return new tally.v1.Counter(target, grpc.credentials.createInsecure());
}

export function adminClient(target: string): AdminClient {
  const { tally } = loadProtos();
  return new tally.v1.Admin(target, grpc.credentials.createInsecure());
}

/** `INVALID_ARGUMENT: state: bad namespace …`, the form scripts can match on. */
export function rpcFailure(err: grpc.ServiceError): CliError {
  return new CliError(`${statusName(err.code)}: ${err.details}`);
}

type UnaryCallback<T> = (err: grpc.ServiceError | null, value?: T) => void;

/** Runs one unary call with a deadline and closes the client afterwards. */
export function unary<T>(
  client: grpc.Client,
  deadlineMs: number,
  invoke: (options: grpc.CallOptions, cb: UnaryCallback<T>) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    invoke({ deadline: Date.now() + deadlineMs }, (err, value) => {
      client.close();
      if (err !== null) reject(rpcFailure(err));
      else if (value === undefined) reject(new CliError('empty response'));
      else resolve(value);
    });
  });
}

/** Writes to stdout; a closed pipe (`tally wal dump | head`) ends the process quietly. */
export function out(text: string): void {
  process.stdout.write(text);
}
