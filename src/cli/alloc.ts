/**
 * `tally alloc`: allocate IDs from a running cluster. Output: every ID on its own line (at most
 * countMax = 10,000 lines), or with --json one object {namespace, first, last, count, epoch,
 * index}. IDs never exceed 2^53-1, so JSON numbers are exact.
 *
 * One --target and no --controller: one Allocate on exactly that node, nothing retried (a
 * script sees that node's own answer: FAILED_PRECONDITION from a standby names the primary).
 * Several --target (repeated or comma-separated) or --controller: the client library finds the
 * primary — it follows a standby's FAILED_PRECONDITION hint, moves on from a node that is down,
 * asks the controller (GetConfig) where the primary is, and retries what is safe to retry until
 * --deadline-ms. A retried allocation never repeats an ID; one whose answer was lost leaves a gap.
 */
import { type Command, Option } from 'commander';
import { countMax } from '../core/limits';
import {
  ClientDeadlineExceededError,
  ClientError,
  ClientRequestError,
  TallyClient,
} from '../client';
import { clientAddressOf, type ClusterView } from '../server/controller-service';
import { ControllerClient } from '../server/controller-client';
import { statusName } from '../server/status';
import type { AllocateResponse__Output } from '../generated/tally/v1/AllocateResponse';
import {
  CliError,
  counterClient,
  deadlineOption,
  defaultTarget,
  hostPortArg,
  hostPortListArg,
  integerArg,
  notAController,
  out,
  unary,
  wrongKind,
} from './common';

interface AllocOptions {
  target?: string[];
  controller?: string;
  namespace: string;
  count: number;
  deadlineMs: number;
  json?: boolean;
}

interface Allocated {
  first: number;
  count: number;
  epoch: number;
  index: number;
}

/** A controller call that takes longer counts as failed (the address list takes over). */
const controllerCallMs = 2000;

function formatIds(first: number, count: number): string {
  const lines = new Array<string>(count);
  for (let i = 0; i < count; i++) lines[i] = String(first + i);
  return count === 0 ? '' : `${lines.join('\n')}\n`;
}

/** One Allocate on exactly `target`. */
async function allocateOnce(target: string, opts: AllocOptions): Promise<Allocated> {
  const client = counterClient(target);
  const res = await unary<AllocateResponse__Output>(target, client, opts.deadlineMs, (o, cb) =>
    client.allocate({ namespace: opts.namespace, count: opts.count }, o, cb),
  );
  return {
    first: Number(res.first),
    count: res.count,
    epoch: Number(res.epoch),
    index: Number(res.index),
  };
}

/**
 * The controller's configuration; null when it cannot be reached (the addresses given, if
 * any, take over). An address that answers but is no controller is a mistake: thrown.
 */
async function configOf(controller: ControllerClient, ms: number): Promise<ClusterView | Error> {
  try {
    return await controller.getConfig(ms);
  } catch (err) {
    const wrong = await notAController(controller.address);
    if (wrong !== null) throw wrong;
    return err as Error;
  }
}

/** Through the client library: the addresses given and/or the controller's view. */
async function allocateFollowing(opts: AllocOptions): Promise<Allocated> {
  const controller = opts.controller === undefined ? null : new ControllerClient(opts.controller);
  let client: TallyClient | null = null;
  try {
    let addresses = opts.target ?? [];
    if (controller !== null) {
      const config = await configOf(controller, Math.min(controllerCallMs, opts.deadlineMs));
      if (config instanceof Error) {
        if (addresses.length === 0) throw new CliError(`alloc: ${config.message}`);
      } else if (addresses.length === 0) {
        addresses = [clientAddressOf(config.primary), clientAddressOf(config.standby)];
      }
    }
    client = new TallyClient({
      addresses,
      resolvePrimary:
        controller === null
          ? undefined
          : async () => clientAddressOf((await controller.getConfig(controllerCallMs)).primary),
      deadlineMs: opts.deadlineMs,
    });
    try {
      return await client.allocate(opts.namespace, opts.count);
    } catch (err) {
      throw await clientFailure(err, addresses);
    }
  } finally {
    client?.close();
    controller?.close();
  }
}

/**
 * The client library's final error as the CLI reports it: `STATUS: details`, the form of a
 * single call. A deadline reached while nodes answered UNAVAILABLE may be an address of the
 * wrong kind (the metrics port): said so when one is.
 */
async function clientFailure(err: unknown, addresses: readonly string[]): Promise<CliError> {
  if (!(err instanceof ClientError)) return new CliError((err as Error).message);
  if (err instanceof ClientDeadlineExceededError) {
    const last = err.lastStatus?.code;
    if (last !== undefined) {
      for (const address of addresses) {
        const wrong = await wrongKind(address, last, 'node');
        if (wrong !== null) return wrong;
      }
    }
    return new CliError(`DEADLINE_EXCEEDED: ${err.message}`);
  }
  const details = err instanceof ClientRequestError ? err.details : err.message;
  for (const address of addresses) {
    const wrong = await wrongKind(address, err.code, 'node');
    if (wrong !== null) return wrong;
  }
  return new CliError(`${statusName(err.code)}: ${details}`);
}

async function runAlloc(opts: AllocOptions): Promise<void> {
  const targets = opts.target ?? (opts.controller === undefined ? [defaultTarget] : []);
  const single = opts.controller === undefined && targets.length === 1;
  const res = single
    ? await allocateOnce(targets[0] as string, opts)
    : await allocateFollowing({ ...opts, target: targets });
  if (opts.json === true) {
    const last = res.first + res.count - 1;
    const doc = { namespace: opts.namespace, first: res.first, last, count: res.count };
    out(`${JSON.stringify({ ...doc, epoch: res.epoch, index: res.index })}\n`);
  } else {
    out(formatIds(res.first, res.count));
  }
}

export function registerAlloc(program: Command): void {
  program
    .command('alloc')
    .description('allocate IDs: prints each ID on its own line (or one JSON object with --json)')
    .addOption(
      new Option(
        '--target <host:port>',
        `a tally node (default ${defaultTarget}); repeat it or separate with commas to give several: the primary is found among them`,
      )
        .env('TALLY_TARGET')
        .argParser(hostPortListArg),
    )
    .addOption(
      new Option(
        '--controller <host:port>',
        'the controller: the primary is taken from its configuration and followed across failovers',
      )
        .env('TALLY_CONTROLLER')
        .argParser(hostPortArg),
    )
    .requiredOption('--namespace <ns>', 'counter namespace: 1-64 characters of [a-z0-9._-]')
    .option('--count <n>', 'how many consecutive IDs', integerArg(1, countMax), 1)
    .addOption(deadlineOption())
    .option('--json', 'print one JSON object instead of one ID per line')
    .action(runAlloc);
}
