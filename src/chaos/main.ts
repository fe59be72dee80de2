#!/usr/bin/env node
/**
 * `npm run chaos -- --duration S --seed N --history FILE`: the chaos runner (docs/chaos.md).
 * Exit codes: 0 PASS, 1 FAIL (an invariant broken, the cluster did not recover, a process
 * crashed, fewer faults than --min-faults), 2 the command line was wrong, 3 the runner could not
 * run as asked (a fault kind this machine cannot run under --require-all, no build, a setup
 * failure).
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cliBuilt } from './members';
import { run, RunnerError } from './runner';
import type { RunOptions } from './types';
import { faultKinds, type FaultKind } from './schedule';

const usage = `usage: npm run chaos -- [options]

A real cluster (controller and two nodes as processes, in network namespaces when run as
root), clients through the client library, and a seeded schedule of faults; then it heals,
waits for recovery, checks the history and prints a report. See docs/chaos.md.

  --duration S            seconds of faults (default 60)
  --seed N                seeds the fault schedule (default: random, printed)
  --history FILE          where the history goes, one JSON line per allocation
                          (default: tally-chaos-SEED.jsonl in the temp dir)
  --kinds K,K,...         fault kinds to use (default: all):
                          ${faultKinds.join(', ')}
  --require-all           a kind this machine cannot run is an error (exit 3), not skipped
  --min-faults N          FAIL when fewer faults were applied (default 0)
  --recovery-timeout S    after the heal, how long the cluster has to serve again with both
                          nodes in sync (default 60)
  --clients N             TallyClients (default 3), each with --loops N loops (default 4)
  --namespaces N          counter namespaces (default 6)
  --rate N                allocations per second over all loops, at most (default 300)
  --deadline-ms N         each allocation's deadline, retries included (default 3000)
  --strict-exits          a node that stops on ENOSPC while its disk is full fails the run
                          (by default it is reported, restarted, and not a failure)
  --quiet                 no line per fault, only the report
  --plant-duplicate       TESTS ONLY: add a duplicate acknowledgement to the history, to
                          show that a violation fails the run
  --help                  this text

Exit: 0 PASS, 1 FAIL, 2 bad arguments, 3 could not run as asked.`;

class UsageError extends Error {}

function intArg(
  name: string,
  value: string | undefined,
  dflt: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got '${value}'`);
  }
  return n;
}

function kindsArg(value: string | undefined): FaultKind[] {
  if (value === undefined) return [...faultKinds];
  const kinds = value.split(',').map((k) => k.trim());
  const unknown = kinds.filter((k) => !(faultKinds as readonly string[]).includes(k));
  if (unknown.length > 0 || kinds.length === 0) {
    throw new UsageError(
      `--kinds: unknown kind(s) ${unknown.join(', ')}; known: ${faultKinds.join(', ')}`,
    );
  }
  return [...new Set(kinds)] as FaultKind[];
}

export function parseOptions(argv: string[]): RunOptions | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      duration: { type: 'string' },
      seed: { type: 'string' },
      history: { type: 'string' },
      kinds: { type: 'string' },
      'require-all': { type: 'boolean' },
      'min-faults': { type: 'string' },
      'recovery-timeout': { type: 'string' },
      clients: { type: 'string' },
      loops: { type: 'string' },
      namespaces: { type: 'string' },
      rate: { type: 'string' },
      'deadline-ms': { type: 'string' },
      'strict-exits': { type: 'boolean' },
      quiet: { type: 'boolean' },
      'plant-duplicate': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const seed = intArg('seed', values.seed, Math.floor(Math.random() * 1_000_000), 0, 2 ** 32 - 1);
  return {
    durationSec: intArg('duration', values.duration, 60, 1, 86_400),
    seed,
    historyPath: path.resolve(
      values.history ?? path.join(os.tmpdir(), `tally-chaos-${seed}.jsonl`),
    ),
    kinds: kindsArg(values.kinds),
    requireAll: values['require-all'] === true,
    minFaults: intArg('min-faults', values['min-faults'], 0, 0, 1_000_000),
    recoveryTimeoutSec: intArg('recovery-timeout', values['recovery-timeout'], 60, 1, 3600),
    clients: intArg('clients', values.clients, 3, 1, 64),
    loopsPerClient: intArg('loops', values.loops, 4, 1, 64),
    namespaces: intArg('namespaces', values.namespaces, 6, 1, 1000),
    ratePerSec: intArg('rate', values.rate, 300, 1, 100_000),
    deadlineMs: intArg('deadline-ms', values['deadline-ms'], 3000, 100, 600_000),
    plantDuplicate: values['plant-duplicate'] === true,
    strictExits: values['strict-exits'] === true,
    verbose: values.quiet !== true,
  };
}

export async function main(argv: string[]): Promise<number> {
  let opts: RunOptions | 'help';
  try {
    opts = parseOptions(argv);
  } catch (err) {
    // parseArgs throws TypeErrors with a readable message (unknown option, missing value).
    process.stderr.write(`chaos: ${(err as Error).message}\n(add --help for usage)\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (!cliBuilt()) {
    process.stderr.write('chaos: dist/cli/main.js is missing: run npm run build\n');
    return 3;
  }
  const verbose = opts.verbose;
  const say = (line: string): void => {
    if (verbose || !line.startsWith('+')) process.stdout.write(`chaos: ${line}\n`);
  };
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (abort.signal.aborted) {
      process.stderr.write(`chaos: ${signal} again: exiting without cleaning up\n`);
      process.exit(130);
    }
    process.stderr.write(`chaos: ${signal}: stopping, cleaning up (again to exit at once)\n`);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await run(opts, abort.signal, say);
    process.stdout.write(`chaos report:\n${result.report}\n`);
    if (abort.signal.aborted) return 130;
    return result.pass ? 0 : 1;
  } catch (err) {
    const message =
      err instanceof RunnerError ? err.message : ((err as Error).stack ?? String(err));
    process.stderr.write(`chaos: ${message}\n`);
    return 3;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
