/**
 * `tally alloc`: allocate IDs from a running node. Output: every ID on its own line (at most
 * countMax = 10,000 lines), or with --json one object {namespace, first, last, count, epoch,
 * index}. IDs never exceed 2^53-1, so JSON numbers are exact.
 */
import type { Command } from 'commander';
import { countMax } from '../core/limits';
import type { AllocateResponse__Output } from '../generated/tally/v1/AllocateResponse';
import { counterClient, deadlineOption, integerArg, out, targetOption, unary } from './common';

interface AllocOptions {
  target: string;
  namespace: string;
  count: number;
  deadlineMs: number;
  json?: boolean;
}

function formatIds(first: number, count: number): string {
  const lines = new Array<string>(count);
  for (let i = 0; i < count; i++) lines[i] = String(first + i);
  return count === 0 ? '' : `${lines.join('\n')}\n`;
}

async function runAlloc(opts: AllocOptions): Promise<void> {
  const client = counterClient(opts.target);
  const res = await unary<AllocateResponse__Output>(opts.target, client, opts.deadlineMs, (o, cb) =>
    client.allocate({ namespace: opts.namespace, count: opts.count }, o, cb),
  );
  const first = Number(res.first);
  if (opts.json === true) {
    const last = first + res.count - 1;
    const doc = { namespace: opts.namespace, first, last, count: res.count };
    out(`${JSON.stringify({ ...doc, epoch: Number(res.epoch), index: Number(res.index) })}\n`);
  } else {
    out(formatIds(first, res.count));
  }
}

export function registerAlloc(program: Command): void {
  program
    .command('alloc')
    .description('allocate IDs: prints each ID on its own line (or one JSON object with --json)')
    .addOption(targetOption())
    .requiredOption('--namespace <ns>', 'counter namespace: 1-64 characters of [a-z0-9._-]')
    .option('--count <n>', 'how many consecutive IDs', integerArg(1, countMax), 1)
    .addOption(deadlineOption())
    .option('--json', 'print one JSON object instead of one ID per line')
    .action(runAlloc);
}
