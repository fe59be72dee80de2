/**
 * `tally promote`: make a standby the primary of a new epoch (manual failover). The epoch must
 * be higher than every epoch the standby has accepted; `tally status` on the standby shows it.
 */
import { Option, type Command } from 'commander';
import type { PromoteResponse__Output } from '../generated/tally/v1/PromoteResponse';
import {
  adminClient,
  deadlineOption,
  hostPortArg,
  integerArg,
  out,
  targetOption,
  unary,
} from './common';

interface PromoteOptions {
  target: string;
  epoch: number;
  standby?: string;
  deadlineMs: number;
  json?: boolean;
}

async function runPromote(opts: PromoteOptions): Promise<void> {
  const client = adminClient(opts.target);
  const res = await unary<PromoteResponse__Output>(client, opts.deadlineMs, (options, cb) =>
    client.promote({ epoch: opts.epoch, standby: opts.standby ?? '' }, options, cb),
  );
  if (opts.json === true) {
    out(`${JSON.stringify(res)}\n`);
    return;
  }
  const mode = opts.standby ? `replicating to ${opts.standby}` : 'serving alone (no standby)';
  out(
    `promoted ${opts.target} to epoch ${res.epoch} as ${res.role}, ${mode}; log at index ${res.lastIndex}\n`,
  );
}

export function registerPromote(program: Command): void {
  program
    .command('promote')
    .description('promote a standby to primary of a new, higher epoch (fences the old primary)')
    .addOption(targetOption())
    .addOption(
      new Option('--epoch <n>', 'the new epoch: higher than any the standby has accepted')
        .argParser(integerArg(1, Number.MAX_SAFE_INTEGER))
        .makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--standby <host:port>',
        'standby for the new primary; without it the new primary acknowledges alone',
      ).argParser(hostPortArg),
    )
    .addOption(deadlineOption())
    .option('--json', 'print the PromoteResponse as JSON')
    .action(runPromote);
}
