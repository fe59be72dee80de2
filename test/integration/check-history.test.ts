/**
 * `tally check-history` as users run it: dist/cli/main.js child processes on history files
 * and on stdin; exit 0 valid, 1 a violation, 2 bad input or usage.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatHistoryLine, type HistoryOp } from '../../src/check/history';
import { modelHistory } from '../../src/testing/history-model';
import { seededRandom } from '../../src/testing/random';
import {
  assertBuilt,
  type CliRun,
  killChildren,
  removeTempDirs,
  runCli,
  spawnCli,
  tempDir,
} from './serve-process';

const ok = (ns: string, first: bigint, count: number, invokeMs: number, completeMs: number) =>
  ({ ns, first, count, invokeMs, completeMs, outcome: 'ok' }) as HistoryOp;

/** Line 1: 10..12; line 3 (after a blank line): 11, invoked after line 1 completed. */
const violating = [ok('x', 10n, 3, 1, 2), null, ok('x', 11n, 1, 5, 6)];

async function historyFile(lines: (HistoryOp | string | null)[]): Promise<string> {
  const file = path.join(await tempDir('tally-check-'), 'history.jsonl');
  const text = lines.map((l) =>
    l === null ? '' : typeof l === 'string' ? l : formatHistoryLine(l),
  );
  await fs.promises.writeFile(file, `${text.join('\n')}\n`);
  return file;
}

async function withStdin(args: string[], input: string): Promise<CliRun> {
  const child = spawnCli(args, {}, [], { stdin: true });
  child.proc.stdin?.end(input);
  const exit = await child.exited;
  return { ...exit, stdout: child.stdout(), stderr: child.stderr() };
}

beforeAll(() => assertBuilt());
afterAll(async () => {
  await killChildren();
  await removeTempDirs();
});

describe('tally check-history', () => {
  it('passes a valid model history of 20,000 operations: exit 0 and the counts', async () => {
    const ops = modelHistory(seededRandom(5), { operations: 20_000, namespaces: 8 });
    const run = await runCli(['check-history', await historyFile(ops)]);
    expect(run.code, run.stderr).toBe(0);
    const acked = ops.filter((o) => o.outcome === 'ok');
    const ids = acked.reduce((sum, o) => sum + o.count, 0);
    expect(run.stdout).toContain(`operations: 20000 (${acked.length} ok, `);
    expect(run.stdout).toContain(`acknowledged IDs: ${ids}\nnamespaces: 8\nverdict: PASS\n`);
    expect(run.stderr).toBe('');
  });

  it('exits 1 on a violation, naming both operations with their line numbers', async () => {
    const run = await runCli(['check-history', await historyFile(violating)]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('verdict: FAIL (2 violations)\n');
    expect(run.stdout).toContain('  duplicate: namespace "x": ID 11 acknowledged twice');
    expect(run.stdout).toContain('  backwards: namespace "x": the counter went back');
    expect(run.stdout).toContain(
      `    a: line 1: ${formatHistoryLine(violating[0] as HistoryOp)}\n`,
    );
    expect(run.stdout).toContain(
      `    b: line 3: ${formatHistoryLine(violating[2] as HistoryOp)}\n`,
    );
    expect(run.stderr).toBe('tally: history: 2 violations; first: duplicate\n');
  });

  it('exits 1 only after the whole report is written, however long (a pipe takes 64 KiB at once)', async () => {
    const ops = Array.from({ length: 3000 }, (_, i) => ok('x', 1n, 1, i * 2, i * 2 + 1));
    const file = await historyFile(ops);
    const run = await runCli(['check-history', '--max-violations', '10000', file]);
    expect(run.code).toBe(1);
    expect(run.stdout.length).toBeGreaterThan(1024 * 1024);
    expect(run.stdout).toMatch(/ {4}b: line 3000: .*\n$/);
    const json = await runCli(['check-history', '--json', '--max-violations', '10000', file]);
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as { violations: unknown[] }).violations).toHaveLength(5998);
  });

  it('--json prints one object: IDs as strings, each op with its line', async () => {
    const run = await runCli(['check-history', '--json', await historyFile(violating)]);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      ok: false,
      operations: 2,
      acknowledged: 2,
      acknowledgedIds: '4',
      violationsTotal: 2,
    });
    expect((report.violations as unknown[])[1]).toMatchObject({
      kind: 'backwards',
      a: { line: 1, ns: 'x', first: '10', count: 3 },
      b: { line: 3, first: '11' },
    });
  });

  it('exits 2 on a malformed line, naming the file and line, without a stack', async () => {
    const file = await historyFile([ok('x', 1n, 1, 1, 2), '{"ns":"x","first":7}']);
    const run = await runCli(['check-history', file]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `tally: history: ${file} line 2: first must be a decimal string such as "7", not a JSON number (numbers lose digits past 2^53)\n`,
    );
  });

  it('exits 2 on a file it cannot read and on a missing argument', async () => {
    const missing = path.join(await tempDir('tally-check-'), 'none.jsonl');
    const run = await runCli(['check-history', missing]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^tally: history: cannot read .*none\.jsonl: ENOENT/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    const usage = await runCli(['check-history']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("missing required argument 'file'");
  });

  it('reads stdin with -: 0 when valid, 1 on a violation, 2 on bad input', async () => {
    const valid = modelHistory(seededRandom(6), { operations: 500, namespaces: 2 });
    const good = await withStdin(['check-history', '-'], valid.map(formatHistoryLine).join('\n'));
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain('verdict: PASS');
    const text = violating.map((o) => (o === null ? '' : formatHistoryLine(o))).join('\n');
    const bad = await withStdin(['check-history', '-'], text);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('a: line 1: ');
    const broken = await withStdin(['check-history', '-'], 'not json\n');
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/^tally: history: stdin line 1: not JSON/);
  });
});
