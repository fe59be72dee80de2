/**
 * `tally checkpoint`: write a snapshot now and compact the WAL below it. A standby snapshots
 * only records the primary has confirmed acknowledged, which it learns with the primary's next
 * records: on a standby that holds more (an idle one always does) the snapshot is captured now
 * and written then; the command says so and exits 0.
 */
import type { Command } from 'commander';
import type { CheckpointResponse__Output } from '../generated/tally/v1/CheckpointResponse';
import { adminClient, integerArg, out, targetOption, unary } from './common';
import { Option } from 'commander';

interface CheckpointOptions {
  target: string;
  deadlineMs: number;
  json?: boolean;
}

async function runCheckpoint(opts: CheckpointOptions): Promise<void> {
  const client = adminClient(opts.target);
  const res = await unary<CheckpointResponse__Output>(client, opts.deadlineMs, (options, cb) =>
    client.checkpoint({}, options, cb),
  );
  if (opts.json === true) {
    out(`${JSON.stringify(res)}\n`);
    return;
  }
  if (res.scheduled) {
    out(
      `checkpoint: scheduled on standby ${res.nodeId} at index ${res.index} (written when the primary's next record confirms that index acknowledged; acknowledged up to ${res.acknowledgedIndex} so far)\n`,
    );
    return;
  }
  const ms = (Number(res.durationUs) / 1000).toFixed(1);
  out(`checkpoint at index ${res.index}: ${res.segmentsRemoved} segments removed, ${ms} ms\n`);
}

export function registerCheckpoint(program: Command): void {
  program
    .command('checkpoint')
    .description('write a checkpoint (snapshot of every counter) now and compact the WAL')
    .addOption(targetOption())
    // A checkpoint fsyncs a snapshot and deletes segments: allow more than an allocation.
    .addOption(
      new Option('--deadline-ms <ms>', 'give up after this many milliseconds')
        .default(60_000)
        .argParser(integerArg(1, 3_600_000)),
    )
    .option('--json', 'print the CheckpointResponse as JSON')
    .action(runCheckpoint);
}
