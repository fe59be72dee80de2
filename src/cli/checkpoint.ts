/**
 * `tally checkpoint`: write a snapshot now and compact the WAL below it. A standby snapshots
 * only records the primary has confirmed acknowledged, which it learns with the primary's next
 * records: on a standby that holds more (an idle one always does) the snapshot is captured now
 * and written then; the command says so and exits 0.
 */
import { type Command, Option } from 'commander';
import type { CheckpointResponse__Output } from '../generated/tally/v1/CheckpointResponse';
import { adminClient, integerArg, jsonNumbers, out, plural, targetOption, unary } from './common';

interface CheckpointOptions {
  target: string;
  deadlineMs: number;
  json?: boolean;
}

export function formatCheckpoint(res: CheckpointResponse__Output): string {
  if (res.scheduled) {
    return `checkpoint: scheduled on standby ${res.nodeId} at index ${res.index} (written when the primary's next record confirms that index acknowledged; acknowledged up to ${res.acknowledgedIndex} so far)\n`;
  }
  const ms = (Number(res.durationUs) / 1000).toFixed(1);
  return `checkpoint at index ${res.index}: ${plural(res.segmentsRemoved, 'segment')} removed, ${ms} ms\n`;
}

async function runCheckpoint(opts: CheckpointOptions): Promise<void> {
  const client = adminClient(opts.target);
  const res = await unary<CheckpointResponse__Output>(
    opts.target,
    client,
    opts.deadlineMs,
    (options, cb) => client.checkpoint({}, options, cb),
  );
  if (opts.json === true) {
    out(`${JSON.stringify(jsonNumbers('tally.v1.CheckpointResponse', res))}\n`);
    return;
  }
  out(formatCheckpoint(res));
}

export function registerCheckpoint(program: Command): void {
  program
    .command('checkpoint')
    .description(
      'write a checkpoint (snapshot of every counter) now and compact the WAL; on a standby it may be scheduled for the next record from the primary',
    )
    .addOption(targetOption())
    // A checkpoint fsyncs a snapshot and deletes segments: allow more than an allocation.
    .addOption(
      new Option('--deadline-ms <ms>', 'give up after this many milliseconds')
        .default(60_000)
        .argParser(integerArg(1, 3_600_000)),
    )
    .option('--json', 'print the CheckpointResponse as JSON (64-bit fields as numbers)')
    .action(runCheckpoint);
}
