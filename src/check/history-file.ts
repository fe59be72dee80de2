/**
 * A history as a file: JSON lines, one operation a line, written by the chaos runner and read
 * by `tally check-history` (docs/history-format.md is the reference for other tools):
 *
 *   {"ns":"orders","first":"41","count":2,"invokeMs":10.5,"completeMs":12,"outcome":"ok"}
 *   {"ns":"orders","first":null,"count":1,"invokeMs":11,"completeMs":30,"outcome":"unknown"}
 *
 * - ns: a non-empty string.
 * - first: the first ID as a decimal string (digits only, no sign, no leading zero), because a
 *   JSON number loses digits past 2^53. Required and >= 1 for ok; for fail / unknown null or
 *   absent (a decimal string there is accepted and ignored).
 * - count: an integer >= 1 (IDs given for ok, asked for otherwise).
 * - invokeMs, completeMs: finite numbers on one clock (fractions allowed), completeMs >=
 *   invokeMs. Only their order matters.
 * - outcome: "ok", "fail" or "unknown".
 * Other fields are ignored, so tools may add their own. Blank lines are skipped; line numbers
 * in errors count every line from 1.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { malformedReason, type HistoryOp } from './history-op';

/** A line that is not a history operation. */
export class HistoryFormatError extends Error {
  constructor(
    readonly lineNo: number,
    readonly reason: string,
    source?: string,
  ) {
    super(`history: ${source === undefined ? '' : `${source} `}line ${lineNo}: ${reason}`);
    this.name = 'HistoryFormatError';
  }
}

const decimal = /^(0|[1-9][0-9]*)$/;

function parseFirst(value: unknown, lineNo: number): bigint | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'number') {
    throw new HistoryFormatError(
      lineNo,
      `first must be a decimal string such as "${value}", not a JSON number (numbers lose digits past 2^53)`,
    );
  }
  if (typeof value !== 'string' || !decimal.test(value)) {
    throw new HistoryFormatError(
      lineNo,
      `first must be a decimal string of digits (got ${JSON.stringify(value)})`,
    );
  }
  return BigInt(value);
}

function field(
  record: Record<string, unknown>,
  name: string,
  type: 'string' | 'number',
  lineNo: number,
) {
  const value = record[name];
  if (typeof value !== type) {
    const got = value === undefined ? 'nothing' : JSON.stringify(value);
    const want = type === 'string' ? 'a string' : 'a JSON number';
    throw new HistoryFormatError(lineNo, `${name} must be ${want} (got ${got})`);
  }
  return value;
}

/** Builds the operation from a parsed line; throws naming the line when it is not one. */
function toOp(record: Record<string, unknown>, lineNo: number): HistoryOp {
  const op = {
    ns: field(record, 'ns', 'string', lineNo),
    first: parseFirst(record.first, lineNo),
    count: field(record, 'count', 'number', lineNo),
    invokeMs: field(record, 'invokeMs', 'number', lineNo),
    completeMs: field(record, 'completeMs', 'number', lineNo),
    outcome: field(record, 'outcome', 'string', lineNo),
  } as HistoryOp;
  const why = malformedReason(op);
  if (why !== null) throw new HistoryFormatError(lineNo, why);
  return op;
}

/** One line of a history file; throws a HistoryFormatError naming the line. */
export function parseHistoryLine(line: string, lineNo: number): HistoryOp {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new HistoryFormatError(lineNo, `not JSON (${(err as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HistoryFormatError(
      lineNo,
      'expected a JSON object {"ns","first","count","invokeMs","completeMs","outcome"}',
    );
  }
  return toOp(value as Record<string, unknown>, lineNo);
}

/** The line for `op` (without a newline), first as a decimal string. */
export function formatHistoryLine(op: HistoryOp): string {
  return JSON.stringify({
    ns: op.ns,
    first: op.first === null ? null : op.first.toString(),
    count: op.count,
    invokeMs: op.invokeMs,
    completeMs: op.completeMs,
    outcome: op.outcome,
  });
}

export interface HistoryRead {
  ops: HistoryOp[];
  /** The line each operation came from (blank lines are skipped, so not always index + 1). */
  lineNumbers: number[];
}

/**
 * Reads a history from a stream line by line; `source` names it in errors (a path, `stdin`).
 * A bad line rejects with a HistoryFormatError; a failing stream with its own error.
 */
export async function readHistory(input: Readable, source: string): Promise<HistoryRead> {
  const ops: HistoryOp[] = [];
  const lineNumbers: number[] = [];
  // readline does not pass the input's errors to its iterator: they end the read here.
  let failed: Error | null = null;
  input.on('error', (err) => (failed = err));
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      try {
        ops.push(parseHistoryLine(line, lineNo));
      } catch (err) {
        const e = err as HistoryFormatError;
        throw new HistoryFormatError(e.lineNo, e.reason, source);
      }
      lineNumbers.push(lineNo);
    }
  } catch (err) {
    if (err instanceof HistoryFormatError) throw err;
    failed ??= err as Error;
  } finally {
    lines.close();
    input.destroy();
  }
  if (failed !== null) {
    throw new Error(`history: cannot read ${source}: ${(failed as Error).message}`, {
      cause: failed,
    });
  }
  return { ops, lineNumbers };
}

/** Reads a history file (streaming: millions of lines are fine); errors name the line. */
export async function readHistoryFile(path: string): Promise<HistoryOp[]> {
  return (await readHistory(fs.createReadStream(path), path)).ops;
}
