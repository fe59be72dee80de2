/**
 * `tally promote`: make a standby the primary of a new epoch (manual failover). The epoch must
 * be higher than every epoch the standby has accepted; `tally status` on the standby shows it.
 *
 * `--force --skip-ahead N`: the operator's way out when no node holding every acknowledged ID
 * will come back (both copies lost, or the only holder gone for good): the node is promoted even
 * if it is catching up, and its epoch starts by raising every counter, and the floor that new
 * namespaces start above, by N — so nothing the lost history can have acknowledged is handed out
 * again, as long as N covers it. With `--controller` the controller does it (and records it).
 */
import { Option, type Command } from 'commander';
import type { PromoteResponse__Output } from '../generated/tally/v1/PromoteResponse';
import { ControllerClient } from '../server/controller-client';
import {
  CliError,
  adminClient,
  deadlineOption,
  exitUsage,
  hostPortArg,
  integerArg,
  jsonNumbers,
  notAController,
  out,
  targetOption,
  unary,
} from './common';
import { configJson } from './status';

interface PromoteOptions {
  target: string;
  epoch?: number;
  standby?: string;
  controller?: string;
  node?: string;
  force?: boolean;
  skipAhead?: number;
  deadlineMs: number;
  json?: boolean;
}

function checkFlags(opts: PromoteOptions): void {
  if (opts.force === true && opts.skipAhead === undefined) {
    throw new CliError(
      'promote: --force needs --skip-ahead N (N above every ID the lost history can have handed out; see README "Both copies lost")',
      exitUsage,
    );
  }
  if (opts.force !== true && opts.skipAhead !== undefined) {
    throw new CliError('promote: --skip-ahead is only for a forced promotion (--force)', exitUsage);
  }
  if (opts.controller !== undefined) {
    if (opts.node === undefined || opts.force !== true) {
      throw new CliError(
        'promote: with --controller give --node ID --force --skip-ahead N (the controller promotes on its own otherwise)',
        exitUsage,
      );
    }
    return;
  }
  if (opts.epoch === undefined) {
    throw new CliError(
      'promote: --epoch N is required (or --controller for a forced promotion)',
      exitUsage,
    );
  }
}

async function viaController(opts: PromoteOptions): Promise<void> {
  const client = new ControllerClient(opts.controller as string);
  try {
    const config = await client.forcePromote(opts.node as string, opts.skipAhead as number);
    if (opts.json === true) {
      out(`${JSON.stringify(configJson(config))}\n`);
      return;
    }
    out(
      `forced: ${config.primary.id} is primary of epoch ${config.epoch}; every counter skipped ahead by ${opts.skipAhead}; ${config.standby.id} catches up as its standby\n`,
    );
  } catch (err) {
    throw (
      (await notAController(client.address)) ?? new CliError(`promote: ${(err as Error).message}`)
    );
  } finally {
    client.close();
  }
}

async function runPromote(opts: PromoteOptions): Promise<void> {
  checkFlags(opts);
  if (opts.controller !== undefined) return viaController(opts);
  const client = adminClient(opts.target);
  const request = {
    epoch: opts.epoch,
    standby: opts.standby ?? '',
    force: opts.force === true,
    skipAhead: opts.skipAhead ?? 0,
  };
  const res = await unary<PromoteResponse__Output>(opts.target, client, opts.deadlineMs, (o, cb) =>
    client.promote(request, o, cb),
  );
  if (opts.json === true) {
    out(`${JSON.stringify(jsonNumbers('tally.v1.PromoteResponse', res))}\n`);
    return;
  }
  const mode = opts.standby ? `replicating to ${opts.standby}` : 'serving alone (no standby)';
  const forced =
    opts.force === true ? `; forced, every counter skipped ahead by ${opts.skipAhead}` : '';
  out(
    `promoted ${opts.target} to epoch ${res.epoch} as ${res.role}, ${mode}; log at index ${res.lastIndex}${forced}\n`,
  );
}

export function registerPromote(program: Command): void {
  program
    .command('promote')
    .description('promote a standby to primary of a new, higher epoch (fences the old primary)')
    .addOption(targetOption())
    .addOption(
      new Option(
        '--epoch <n>',
        'the new epoch: higher than any the standby has accepted',
      ).argParser(integerArg(1, Number.MAX_SAFE_INTEGER)),
    )
    .addOption(
      new Option(
        '--standby <host:port>',
        'standby for the new primary; without it the new primary acknowledges alone',
      ).argParser(hostPortArg),
    )
    .option(
      '--force',
      'promote although the node may not hold every acknowledged ID (needs --skip-ahead)',
    )
    .addOption(
      new Option(
        '--skip-ahead <n>',
        'forced promotion: raise every counter, and the floor new namespaces start above, by N',
      ).argParser(integerArg(1, Number.MAX_SAFE_INTEGER)),
    )
    .addOption(
      new Option(
        '--controller <host:port>',
        'forced promotion through the controller (with --node ID)',
      ).argParser(hostPortArg),
    )
    .option('--node <id>', 'with --controller: the member to promote')
    .addOption(deadlineOption())
    .option(
      '--json',
      'print the PromoteResponse (or, with --controller, the configuration) as JSON (64-bit fields as numbers)',
    )
    .action(runPromote);
}
