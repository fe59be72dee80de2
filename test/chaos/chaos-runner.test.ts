/**
 * The chaos runner (`npm run chaos`, src/chaos/) run as users run it: a process, its report on
 * stdout, its exit code, its history file, and nothing left behind.
 *   1. a short seeded run with every fault kind passes, prints the report (a line `N faults`,
 *      the schedule digest of its seed), and writes one parseable history line per operation;
 *   2. a planted duplicate (--plant-duplicate, for tests only) fails the run: exit 1, the
 *      violation named — so a real one would too;
 *   3. bad arguments: a readable message, exit 2;
 *   4. SIGINT mid-run: it stops, cleans up (processes, namespaces, mounts, temp dir), exits 130.
 * Runs 1 and 4 need root, network namespaces and tmpfs (every fault kind): skipped with a
 * message elsewhere, required when REQUIRE_NETNS=1. Runs 2 and 3 need none of it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tmpfsUnavailable } from '../../src/chaos/disk';
import { NetLab } from '../../src/chaos/net-lab';
import { faultKinds, makeSchedule } from '../../src/chaos/schedule';
import { assertBuilt, removeTempDirs, repoRoot, tempDir } from '../integration/serve-process';

const why = NetLab.unavailable() ?? tmpfsUnavailable();
if (why !== null && process.env.REQUIRE_NETNS === '1') {
  throw new Error(`chaos runner tests: REQUIRE_NETNS=1 but ${why}`);
}
if (why !== null) {
  console.warn(
    `chaos runner: the runs with every fault kind are skipped: ${why} (set REQUIRE_NETNS=1 to make this an error)`,
  );
}

const runnerPath = path.join(repoRoot, 'dist', 'chaos', 'main.js');
const running = new Set<ChildProcess>();

beforeAll(() => {
  assertBuilt();
  if (!fs.existsSync(runnerPath)) throw new Error(`test: ${runnerPath} missing; run npm run build`);
});
afterEach(async () => {
  // A runner still going (a failed assertion) is killed; its members stop on their stdin's end.
  await Promise.all(
    [...running].map((proc) => {
      const gone = new Promise((resolve) => proc.once('close', resolve));
      proc.kill('SIGKILL');
      return gone;
    }),
  );
});
afterAll(removeTempDirs);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the chaos runner; `onOutput` sees its stdout so far (and gets the process). */
function runChaos(
  args: string[],
  onOutput?: (stdout: string, proc: ChildProcess) => void,
): Promise<Run> {
  const proc = spawn(process.execPath, [runnerPath, ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    onOutput?.(stdout, proc);
  });
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) =>
    proc.once('close', (code) => {
      running.delete(proc);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** The report line starting with `key: `, without it. */
function field(stdout: string, key: string): string {
  const m = new RegExp(`^${key}: (.*)$`, 'm').exec(stdout);
  if (m === null) throw new Error(`test: no '${key}:' line in\n${stdout}`);
  return m[1] as string;
}

/** Command lines of every process running now. */
function commandLines(): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      out.push(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * What the runner says it made is gone again: no process runs on its run dir (every member's
 * data dir is in it), the dir and its mounts are gone, and so are its network namespaces.
 */
function expectNothingLeft(stdout: string): void {
  const m = /^chaos: run dir (\S+)(?:, network namespaces (tly\d+)-\*)?$/m.exec(stdout);
  expect(m, stdout).not.toBeNull();
  const [, runDir, prefix] = m as RegExpExecArray;
  expect(commandLines().filter((c) => c.includes(runDir as string))).toEqual([]);
  expect(fs.existsSync(runDir as string)).toBe(false);
  expect(fs.readFileSync('/proc/mounts', 'utf8')).not.toContain(runDir as string);
  if (prefix !== undefined) {
    const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    expect(namespaces).not.toMatch(new RegExp(`^${prefix}-`, 'm'));
  }
}

describe('chaos runner (npm run chaos)', () => {
  it.skipIf(why !== null)(
    'a short seeded run with every fault kind: PASS, exit 0, the report with `N faults`, one history line per operation, nothing left behind',
    async () => {
      const history = path.join(await tempDir('tally-chaos-test-'), 'history.jsonl');
      const seed = 11;
      const r = await runChaos([
        '--duration',
        '20',
        '--seed',
        String(seed),
        '--history',
        history,
        '--require-all',
      ]);
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(field(r.stdout, 'verdict')).toBe('PASS');
      const faults = Number(/^(\d+) faults$/m.exec(r.stdout)?.[1]);
      expect(faults).toBeGreaterThanOrEqual(3);
      expect(field(r.stdout, 'seed')).toBe(
        `${seed}, schedule digest ${makeSchedule(seed, 20_000, [...faultKinds]).digest}`,
      );

      const lines = fs.readFileSync(history, 'utf8').trimEnd().split('\n');
      expect(field(r.stdout, 'operations')).toMatch(new RegExp(`^${lines.length} `));
      let ok = 0;
      let ids = 0n;
      for (const line of lines) {
        const op = JSON.parse(line) as Record<string, unknown>;
        expect(Object.keys(op)).toEqual([
          'ns',
          'first',
          'count',
          'invokeMs',
          'completeMs',
          'outcome',
        ]);
        expect(['ok', 'fail', 'unknown']).toContain(op.outcome);
        expect(op.completeMs as number).toBeGreaterThanOrEqual(op.invokeMs as number);
        if (op.outcome === 'ok') {
          expect(op.first).toMatch(/^[1-9]\d*$/);
          ok++;
          ids += BigInt(op.count as number);
        } else expect(op.first).toBeNull();
      }
      expect(ok).toBeGreaterThan(100);
      expect(field(r.stdout, 'acknowledged')).toMatch(new RegExp(`^${ok} in \\d+ namespaces$`));
      expect(field(r.stdout, 'acknowledged IDs')).toBe(String(ids));
      expect(field(r.stdout, 'recovery')).toMatch(/^serving .* and in sync .* after the heal$/);
      expectNothingLeft(r.stdout);
    },
    120_000,
  );

  it('a planted duplicate fails the run: exit 1, the violation named, the members’ logs kept', async () => {
    const history = path.join(await tempDir('tally-chaos-test-'), 'history.jsonl');
    const args = ['--duration', '4', '--seed', '3', '--kinds', 'kill,pause', '--history', history];
    const r = await runChaos([...args, '--plant-duplicate']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(1);
    expect(r.stdout).toMatch(/^violation: duplicate: .*acknowledged twice/m);
    expect(field(r.stdout, 'verdict')).toMatch(/^FAIL: [12] violation\(s\)$/);
    expect(fs.readdirSync(`${history}.logs`).sort()).toEqual(['a.log', 'b.log', 'controller.log']);
    expectNothingLeft(r.stdout);
  }, 60_000);

  it('bad arguments: a readable message and exit 2, nothing started', async () => {
    const zero = await runChaos(['--duration', '0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--duration must be an integer from 1 to 86400, got '0'/);
    const unknown = await runChaos(['--kinds', 'kill,flood']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown kind\(s\) flood/);
    expect((await runChaos(['--no-such-flag'])).code).toBe(2);
    const help = await runChaos(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--history FILE/);
  }, 30_000);

  it('SIGINT mid-run: stops, cleans up every process, namespace, mount and temp dir, exits 130', async () => {
    const history = path.join(await tempDir('tally-chaos-test-'), 'history.jsonl');
    let sent = false;
    const r = await runChaos(
      ['--duration', '600', '--seed', '5', '--history', history],
      (out, proc) => {
        if (!sent && out.includes('faults start')) {
          sent = true;
          proc.kill('SIGINT');
        }
      },
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(130);
    expect(r.stderr).toMatch(/SIGINT: stopping, cleaning up/);
    expectNothingLeft(r.stdout);
  }, 60_000);
});
