/**
 * Shared pieces of the `tally` subcommands: flag parsers, the error type that carries an
 * exit code, gRPC client plumbing, and what a failed call to an address of the wrong kind
 * (the metrics port, the controller instead of a node, a node instead of the controller) is
 * reported as.
 */
import * as grpc from '@grpc/grpc-js';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { parseHostPort, probeTcp } from '../server/listen';
import { loadProtos } from '../server/proto';
import { statusName } from '../server/status';
import type { AdminClient } from '../generated/tally/v1/Admin';
import type { CounterClient } from '../generated/tally/v1/Counter';
import type { ControllerClient as WireControllerClient } from '../generated/tally/v1/Controller';
import type { StatusResponse__Output } from '../generated/tally/v1/StatusResponse';

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

/** `--target a:1 --target b:2` or `--target a:1,b:2` (also TALLY_TARGET=a:1,b:2). */
export function hostPortListArg(value: string, previous: string[] | undefined): string[] {
  const added = value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map(hostPortArg);
  if (added.length === 0) throw new InvalidArgumentError('expected HOST:PORT[,HOST:PORT…]');
  return [...(previous ?? []), ...added];
}

export function integerArg(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
    if (!(Number.isSafeInteger(n) && n >= min && n <= max)) {
      throw new InvalidArgumentError(`expected an integer ${min}..${max}`);
    }
    return n;
  };
}

/** `1 segment`, `2 segments`. */
export function plural(n: number | string, singular: string, pluralForm = `${singular}s`): string {
  return `${n} ${Number(n) === 1 ? singular : pluralForm}`;
}

export const defaultTarget = '127.0.0.1:7400';

export function targetOption(): Option {
  return new Option('--target <host:port>', 'address of a tally node')
    .env('TALLY_TARGET')
    .default(defaultTarget)
    .argParser(hostPortArg);
}

export function deadlineOption(): Option {
  return new Option('--deadline-ms <ms>', 'give up after this many milliseconds')
    .default(5000)
    .argParser(integerArg(1, 3_600_000));
}

/**
 * commander checks required options before it looks for unknown ones, so a mistyped required
 * flag (`serve --idd a`) was reported as the required one missing, and its near name never
 * suggested. Every required option of every command is checked here instead, in a preAction
 * hook, which commander runs after its unknown-option check.
 */
export function checkRequiredAfterUnknown(program: Command): void {
  const required = new Set<Option>();
  const collect = (cmd: Command): void => {
    for (const option of cmd.options) {
      if (!option.mandatory) continue;
      required.add(option);
      option.makeOptionMandatory(false);
    }
    cmd.commands.forEach(collect);
  };
  collect(program);
  program.hook('preAction', (_hooked, action) => {
    for (let cmd: Command | null = action; cmd !== null; cmd = cmd.parent) {
      for (const option of cmd.options) {
        if (required.has(option) && cmd.getOptionValue(option.attributeName()) === undefined) {
          action.error(`error: required option '${option.flags}' not specified`, {
            code: 'commander.missingMandatoryOptionValue',
          });
        }
      }
    }
  });
}

export function counterClient(target: string): CounterClient {
  const { tally } = loadProtos();
  return new tally.v1.Counter(target, grpc.credentials.createInsecure());
}

export function adminClient(target: string): AdminClient {
  const { tally } = loadProtos();
  return new tally.v1.Admin(target, grpc.credentials.createInsecure());
}

function wireControllerClient(target: string): WireControllerClient {
  const { tally } = loadProtos();
  return new tally.v1.Controller(target, grpc.credentials.createInsecure());
}

/** `INVALID_ARGUMENT: state: bad namespace …`, the form scripts can match on. */
export function rpcFailure(err: grpc.ServiceError): CliError {
  return new CliError(`${statusName(err.code)}: ${err.details}`);
}

type UnaryCallback<T> = (err: grpc.ServiceError | null, value?: T) => void;

/** One unary call with a deadline; the client is closed when it is answered. */
function call<T>(
  client: grpc.Client,
  deadlineMs: number,
  invoke: (options: grpc.CallOptions, cb: UnaryCallback<T>) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    invoke({ deadline: Date.now() + deadlineMs }, (err, value) => {
      client.close();
      if (err !== null) reject(err);
      else if (value === undefined) reject(new Error('empty response'));
      else resolve(value);
    });
  });
}

/** What a service at an address turned out to be, when it was not what a command expected. */
export type Expected = 'node' | 'controller';

/** How long a probe that explains a failure may take. */
const probeMs = 1000;

/**
 * Runs one unary call on the Tally node at `target` and closes the client afterwards. A
 * failure becomes a CliError: `STATUS: details`, or what the address is when it is no node.
 */
export async function unary<T>(
  target: string,
  client: grpc.Client,
  deadlineMs: number,
  invoke: (options: grpc.CallOptions, cb: UnaryCallback<T>) => void,
): Promise<T> {
  try {
    return await call(client, deadlineMs, invoke);
  } catch (err) {
    if (!isServiceError(err)) throw new CliError((err as Error).message);
    throw (await wrongKind(target, err.code, 'node')) ?? rpcFailure(err);
  }
}

export function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as grpc.ServiceError).code === 'number';
}

/**
 * When a call failed with `code`: is `target` something other than what was expected? The
 * metrics port (or any HTTP/1 server) fails a gRPC call with UNAVAILABLE "Protocol error";
 * the controller does not implement the node's services, nor a node the controller's
 * (UNIMPLEMENTED). Each probe is one short call; null when nothing wrong was found.
 */
export async function wrongKind(
  target: string,
  code: grpc.status,
  expected: Expected,
): Promise<CliError | null> {
  if (code === grpc.status.UNAVAILABLE && (await answersHttp1(target))) {
    return new CliError(
      `${target} is not a Tally gRPC port (it answered HTTP/1: the metrics port?)`,
    );
  }
  if (code !== grpc.status.UNIMPLEMENTED) return null;
  if (expected === 'controller') {
    const status = await nodeStatus(target).catch(() => null);
    if (status !== null) {
      return new CliError(
        `${target} is a Tally node (${status.nodeId}, ${status.role}), not the controller: give the controller's address`,
      );
    }
    return new CliError(
      `${target} does not serve tally.v1.Controller (UNIMPLEMENTED): not a Tally controller`,
    );
  }
  if (await isController(target)) {
    return new CliError(
      `${target} is the Tally controller, not a node: give a node's address (tally status --controller ${target} lists them)`,
    );
  }
  return new CliError(
    `${target} does not serve tally.v1's node services (UNIMPLEMENTED): not a Tally node`,
  );
}

/**
 * A failure of a controller call (made with ControllerClient, whose errors carry no status
 * code): the controller's own GetConfig, tried once more, says whether `target` is a
 * controller at all. Returns the readable error, or null when it is one.
 */
export async function notAController(target: string): Promise<CliError | null> {
  const client = wireControllerClient(target);
  try {
    await call(client, probeMs, (options, cb) => client.getConfig({}, options, cb));
    return null;
  } catch (err) {
    if (!isServiceError(err)) return null;
    return wrongKind(target, err.code, 'controller');
  }
}

function nodeStatus(target: string): Promise<StatusResponse__Output> {
  const client = adminClient(target);
  return call<StatusResponse__Output>(client, probeMs, (options, cb) =>
    client.status({}, options, cb),
  );
}

async function isController(target: string): Promise<boolean> {
  const client = wireControllerClient(target);
  try {
    await call(client, probeMs, (options, cb) => client.getConfig({}, options, cb));
    return true;
  } catch (err) {
    // The address just answered: any refusal but UNIMPLEMENTED is a controller's own answer
    // (one that has no configuration yet refuses GetConfig, but implements it).
    return isServiceError(err) && err.code !== grpc.status.UNIMPLEMENTED;
  }
}

/** The HTTP/2 connection preface every gRPC connection starts with. */
const http2Preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

/**
 * Sends what a gRPC client sends first; true when the answer is HTTP/1 (an HTTP/1 server
 * answers the preface with `HTTP/1.1 400 Bad Request`; an HTTP/2 server with a SETTINGS frame).
 */
export function answersHttp1(target: string, timeoutMs = probeMs): Promise<boolean> {
  let received = Buffer.alloc(0);
  return probeTcp(target, timeoutMs, false, (socket, settle) => {
    socket.on('connect', () => socket.write(http2Preface));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 5) settle(received.subarray(0, 5).toString('latin1') === 'HTTP/');
    });
    socket.on('error', () => settle(false));
    socket.on('close', () => settle(received.toString('latin1').startsWith('HTTP/')));
  });
}

/**
 * A message as JSON with every 64-bit integer field (epochs, indexes, IDs, sizes, times) as a
 * JSON number instead of protobuf JSON's string: every such value Tally sends is below 2^53,
 * so the numbers are exact. Walks the message's descriptor, nested messages included.
 */
export function jsonNumbers(typeName: string, message: unknown): unknown {
  if (message === null || typeof message !== 'object') return message;
  const definition = loadProtos().packageDefinition[typeName] as
    { type?: { field?: WireField[] } } | undefined;
  const fields = definition?.type?.field;
  if (fields === undefined) return message;
  const source = message as Record<string, unknown>;
  const result: Record<string, unknown> = { ...source };
  for (const field of fields) {
    const value = source[field.name];
    if (value === undefined || value === null) continue;
    const convert = (v: unknown): unknown => {
      if (longTypes.has(field.type)) return Number(v);
      if (field.type === 'TYPE_MESSAGE') return jsonNumbers(qualified(typeName, field.typeName), v);
      return v;
    };
    result[field.name] = Array.isArray(value) ? value.map(convert) : convert(value);
  }
  return result;
}

interface WireField {
  name: string;
  type: string;
  typeName: string;
}

const longTypes = new Set([
  'TYPE_UINT64',
  'TYPE_INT64',
  'TYPE_FIXED64',
  'TYPE_SFIXED64',
  'TYPE_SINT64',
]);

/** A field's type name as the package definition keys it (`tally.v1.ReplicationStatus`). */
function qualified(parent: string, typeName: string): string {
  if (typeName.startsWith('.')) return typeName.slice(1);
  return `${parent.slice(0, parent.lastIndexOf('.'))}.${typeName}`;
}

/** Writes to stdout; a closed pipe (`tally wal dump | head`) ends the process quietly. */
export function out(text: string): void {
  process.stdout.write(text);
}
