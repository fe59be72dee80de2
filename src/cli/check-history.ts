/**
 * `tally check-history FILE`: checks a history of allocations (JSON lines, the format in
 * docs/history-format.md; `-` reads stdin) for IDs given twice, real-time order and a counter
 * that went back. Exit 0 when valid, 1 on a violation, 2 when the input cannot be read or is
 * not a history (the line is named). The report goes to stdout, as text or with --json as one
 * JSON object (IDs as decimal strings, like the file).
 */
import fs from 'node:fs';
import { type Command, Option } from 'commander';
import {
  type CheckReport,
  checkHistory,
  formatHistoryLine,
  type HistoryOp,
  type HistoryRead,
  readHistory,
  type Violation,
  violationsMaxDefault,
} from '../check/history';
import { CliError, exitUsage, integerArg, out, plural } from './common';

interface CheckHistoryOptions {
  json?: boolean;
  maxViolations: number;
}

/** The line each operation named in the report came from: one pass over the history. */
function linesOf(read: HistoryRead, report: CheckReport): Map<HistoryOp, number> {
  const named = new Set(report.violations.flatMap((v) => [v.a, v.b]));
  const lines = new Map<HistoryOp, number>();
  read.ops.forEach((op, i) => {
    if (named.has(op)) lines.set(op, read.lineNumbers[i] as number);
  });
  return lines;
}

function violationText(lines: Map<HistoryOp, number>, v: Violation): string {
  let text = `  ${v.kind}: ${v.message}\n`;
  for (const [name, op] of [
    ['a', v.a],
    ['b', v.b],
  ] as const) {
    if (op !== undefined) text += `    ${name}: line ${lines.get(op)}: ${formatHistoryLine(op)}\n`;
  }
  return text;
}

function reportText(read: HistoryRead, report: CheckReport): string {
  let text =
    `operations: ${report.operations} (${report.acknowledged} ok, ${report.failed} fail, ${report.unknown} unknown)\n` +
    `acknowledged IDs: ${report.acknowledgedIds}\n` +
    `namespaces: ${report.namespaces}\n`;
  if (report.ok) return `${text}verdict: PASS\n`;
  text += `verdict: FAIL (${plural(report.violationsTotal, 'violation')})\n`;
  const lines = linesOf(read, report);
  for (const v of report.violations) text += violationText(lines, v);
  const hidden = report.violationsTotal - report.violations.length;
  if (hidden > 0) text += `  … and ${hidden} more (--max-violations to see more)\n`;
  return text;
}

function reportJson(read: HistoryRead, report: CheckReport): string {
  const lines = linesOf(read, report);
  const opJson = (op: HistoryOp | undefined) =>
    op === undefined
      ? undefined
      : { line: lines.get(op), ...(JSON.parse(formatHistoryLine(op)) as object) };
  return `${JSON.stringify({
    ...report,
    acknowledgedIds: report.acknowledgedIds.toString(),
    violations: report.violations.map((v) => ({ ...v, a: opJson(v.a), b: opJson(v.b) })),
  })}\n`;
}

async function read(file: string): Promise<HistoryRead> {
  const input = file === '-' ? process.stdin : fs.createReadStream(file);
  try {
    return await readHistory(input, file === '-' ? 'stdin' : file);
  } catch (err) {
    // A line that is not a history, or a file that cannot be read: bad input, not a verdict.
    throw new CliError((err as Error).message, exitUsage);
  }
}

async function runCheckHistory(file: string, opts: CheckHistoryOptions): Promise<void> {
  const history = await read(file);
  const report = checkHistory(history.ops, { maxViolations: opts.maxViolations });
  out(opts.json === true ? reportJson(history, report) : reportText(history, report));
  if (!report.ok) {
    throw new CliError(
      `history: ${plural(report.violationsTotal, 'violation')}; first: ${report.violations[0]?.kind}`,
    );
  }
}

export function registerCheckHistory(program: Command): void {
  program
    .command('check-history')
    .description(
      'check a history of allocations (JSON lines) for IDs given twice, real-time order and a counter that went back; exit 1 on a violation',
    )
    .argument('<file>', 'history file (JSON lines), or - for stdin')
    .option('--json', 'print the report as one JSON object')
    .addOption(
      new Option('--max-violations <n>', 'violations to print')
        .default(violationsMaxDefault)
        .argParser(integerArg(1, 1_000_000)),
    )
    .action(runCheckHistory);
}
