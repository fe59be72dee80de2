#!/usr/bin/env node
/**
 * The `tally` command. Exit codes: 0 ok, 1 the operation failed (runtime error, RPC error,
 * corrupt WAL, a history with a violation), 2 the command line was wrong (or, for
 * check-history, the input is not a history). Every failure is one `tally: …` line on
 * stderr; stacks only with LOG_LEVEL=debug.
 */
import { Command, CommanderError } from 'commander';
import { createLogger, routeGrpcLogs } from '../server/logger';
import { packageVersion } from '../server/version';
import { registerAlloc } from './alloc';
import { registerCheckHistory } from './check-history';
import { registerCheckpoint } from './checkpoint';
import { CliError, checkRequiredAfterUnknown, exitFailure, exitUsage } from './common';
import { registerCluster } from './cluster';
import { registerController } from './controller';
import { registerPromote } from './promote';
import { registerServe } from './serve';
import { registerStatus } from './status';
import { registerWal } from './wal';

export function buildProgram(): Command {
  const program = new Command('tally')
    .description('Tally: durable, unique, increasing IDs over gRPC')
    .version(packageVersion())
    // Set before the subcommands are added: they inherit these settings when created.
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({
      outputError: (text, write) => write(`tally: ${text.replace(/^error: /, '')}`),
    });
  registerServe(program);
  registerAlloc(program);
  registerStatus(program);
  registerCheckpoint(program);
  registerPromote(program);
  registerController(program);
  registerCluster(program);
  registerWal(program);
  registerCheckHistory(program);
  checkRequiredAfterUnknown(program);
  return program;
}

function fail(err: unknown): number {
  if (err instanceof CommanderError) {
    // commander has already printed its message (or the help/version text).
    return err.exitCode === 0 ? 0 : exitUsage;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`tally: ${message}\n`);
  if (process.env.LOG_LEVEL === 'debug' && err instanceof Error && err.stack !== undefined) {
    process.stderr.write(`${err.stack}\n`);
  }
  return err instanceof CliError ? err.exitCode : exitFailure;
}

export async function main(argv: string[]): Promise<void> {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // A closed pipe (`tally wal dump | head`) is the reader's choice, not a failure.
    process.exit(err.code === 'EPIPE' ? 0 : exitFailure);
  });
  try {
    routeGrpcLogs(createLogger());
    await buildProgram().parseAsync(argv);
  } catch (err) {
    const code = fail(err);
    // process.exit drops what a pipe has not taken yet (a long report before exit 1): the
    // callback of an empty write runs once everything written before it has been flushed.
    await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    process.exit(code);
  }
}

if (require.main === module) void main(process.argv);
