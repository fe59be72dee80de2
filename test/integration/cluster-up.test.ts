/** `tally cluster up` (what `npm start` runs): one command, three processes, clean stop. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  allocate,
  assertBuilt,
  counterClient,
  killChildren,
  nodeStatus,
  removeTempDirs,
  repoRoot,
  spawnCli,
  tempDir,
  until,
} from './serve-process';

beforeAll(assertBuilt);
afterEach(async () => {
  await killChildren();
  await removeTempDirs();
});

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A base port P with P, P+1, P+2 and P+1000..P+1002 free right now. */
async function freeBasePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const ports = [0, 1, 2, 1000, 1001, 1002].map((d) => base + d);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return base;
  }
  throw new Error('test: no free port range');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pids in the members' `serving` lines of `cluster up`'s output (with its prefixes). */
function servingPids(stdout: string): number[] {
  return [...stdout.matchAll(/^\[(?:controller|a|b)\]\s+(\{"event":"serving".*)$/gm)].map(
    (m) => JSON.parse(m[1] as string).pid as number,
  );
}

/** `cluster up` with its stdin open for member commands (`say`), and a wait for its output. */
async function interactiveUp() {
  const dir = await tempDir('tally-up-');
  const base = await freeBasePort();
  const up = spawnCli(
    ['cluster', 'up', '--data-dir', path.join(dir, 'data'), '--base-port', String(base)],
    {},
    [],
    { stdin: true },
  );
  const say = (line: string): void => void up.proc.stdin?.write(`${line}\n`);
  const printed = (re: RegExp) =>
    until(`cluster up printed ${re}`, () =>
      Promise.resolve(re.test(up.stdout()) ? true : null),
    ).catch((err: Error) => {
      throw new Error(`${err.message}; stdout:\n${up.stdout()}\nstderr:\n${up.stderr()}`);
    });
  return { up, base, say, printed };
}

describe('tally cluster up', () => {
  it('starts a controller and two nodes with prefixed logs, serves allocations, and stops every process on SIGINT (exit 0)', async () => {
    const dir = await tempDir('tally-up-');
    const base = await freeBasePort();
    const up = spawnCli([
      'cluster',
      'up',
      '--data-dir',
      path.join(dir, 'data'),
      '--base-port',
      String(base),
    ]);
    const pids = await until('three members serving', () => {
      const found = servingPids(up.stdout());
      return Promise.resolve(found.length === 3 ? found : null);
    });
    expect(up.stdout()).toContain(`controller  127.0.0.1:${base + 2}`);
    expect(up.stdout()).toContain(`http://127.0.0.1:${base + 1001}/metrics`);
    const client = counterClient(`127.0.0.1:${base}`);
    const first = await until('a serving as primary', () =>
      allocate(client, 'demo', 3).then((r) => Number(r.first)),
    );
    client.close();
    expect(first).toBeGreaterThanOrEqual(1);
    up.proc.kill('SIGINT');
    const exit = await up.exited;
    expect(exit.code).toBe(0);
    expect(up.stdout()).toContain('tally: cluster stopped');
    for (const pid of pids) expect(alive(pid), `pid ${pid}`).toBe(false);
  });

  it('stdin commands: `kill a` fails over to b, `start a` brings a back in sync; SIGKILL of cluster up stops every member', async () => {
    const { up, base, say, printed } = await interactiveUp();
    await printed(/^tally: primary a, standby b \(in sync\)$/m);
    expect(up.stdout()).toContain('commands (type and press Enter)');
    // b holds a's log before a is killed (else no member may take over, rightly): a streams
    // to it and b no longer counts itself catching up.
    await until('b caught up with a', async () => {
      const a = await nodeStatus(`127.0.0.1:${base}`).catch(() => null);
      const b = await nodeStatus(`127.0.0.1:${base + 1}`).catch(() => null);
      return a?.replication?.state === 'streaming' &&
        b?.replication?.catchingUp === false &&
        b.lastIndex === a.lastIndex
        ? true
        : null;
    });
    say('kill a');
    await printed(/^tally: a stopped \(SIGKILL\); `start a` starts it again$/m);
    await printed(/^tally: primary b, standby a \(not in sync\)$/m);
    say('start a');
    await printed(/^tally: starting a$/m);
    await printed(/^tally: primary b, standby a \(in sync\)$/m);
    say('ps');
    await printed(/^ {2}a +running \(pid \d+\)$/m);
    say('restart x');
    await printed(/^tally: unknown command 'restart x'/m);

    const pids = servingPids(up.stdout()).filter(alive);
    expect(pids).toHaveLength(3);
    // The members hold a pipe from cluster up: when it dies, even by SIGKILL, they stop.
    up.proc.kill('SIGKILL');
    await up.exited;
    await until('every member stopped after cluster up was killed', () =>
      Promise.resolve(pids.every((pid) => !alive(pid)) ? true : null),
    );
  });

  it('members stopped by command are not a dead cluster: `restart` of the last one running and `stop` of every one keep cluster up running', async () => {
    const { up, say, printed } = await interactiveUp();
    let exitCode: number | null | undefined;
    void up.exited.then((e) => (exitCode = e.code));
    await printed(/^tally: primary a, standby b \(in sync\)$/m);
    await printed(/^\[a\]\s+\{"event":"serving"/m);
    await printed(/^\[b\]\s+\{"event":"serving"/m);
    say('stop b');
    await printed(/^tally: b stopped \(code 0\)/m);
    say('stop a');
    await printed(/^tally: a stopped \(code 0\)/m);
    say('restart controller');
    await printed(/^tally: starting controller$/m);
    await printed(
      /^\[controller\]\s+\{"event":"serving"[^\n]*\n(?:.*\n)*\[controller\]\s+\{"event":"serving"/m,
    );
    expect(exitCode).toBeUndefined();
    say('stop controller');
    await printed(/^tally: controller stopped \(code 0\)/m);
    await new Promise((r) => setTimeout(r, 500));
    expect(up.stdout()).not.toContain('the cluster is down');
    expect(exitCode).toBeUndefined();
    up.proc.kill('SIGINT');
    expect((await up.exited).code).toBe(0);
  });

  it('a member still starting (waiting for a stopped controller) stops too when cluster up is killed', async () => {
    const { up, say, printed } = await interactiveUp();
    await printed(/^\[a\]\s+\{"event":"serving"/m);
    await printed(/^\[b\]\s+\{"event":"serving"/m);
    say('stop controller');
    await printed(/^tally: controller stopped/m);
    say('restart a');
    await printed(/^tally: starting a$/m);
    say('ps');
    const pid = await until('a running', () => {
      const m = / {2}a +running \(pid (\d+)\)/.exec(up.stdout());
      if (m === null) say('ps');
      return Promise.resolve(m === null ? null : Number(m[1]));
    });
    await new Promise((r) => setTimeout(r, 1000)); // a recovers, then waits for the controller
    expect(alive(pid)).toBe(true);
    up.proc.kill('SIGKILL');
    await up.exited;
    await until('a stopped after cluster up was killed', () =>
      Promise.resolve(alive(pid) ? null : true),
    );
  });

  it('a member that does not stop within the grace is killed, and cluster up exits 1 saying so', async () => {
    const dir = await tempDir('tally-up-');
    const base = await freeBasePort();
    const up = spawnCli([
      'cluster',
      'up',
      '--data-dir',
      path.join(dir, 'data'),
      '--base-port',
      String(base),
    ]);
    const pid = await until('b serving', () => {
      const m = /^\[b\]\s+(\{"event":"serving".*)$/m.exec(up.stdout());
      return Promise.resolve(m === null ? null : (JSON.parse(m[1] as string).pid as number));
    });
    process.kill(pid, 'SIGSTOP'); // a hung member: the SIGTERM waits, the SIGKILL does not
    up.proc.kill('SIGINT');
    const exit = await up.exited;
    expect(exit.code).toBe(1);
    expect(up.stdout()).toMatch(/^tally: cluster stopped; not cleanly: b \(SIGKILL\)$/m);
    expect(alive(pid)).toBe(false);
  });

  it('npm start: a SIGTERM to npm (a supervisor) stops cluster up and every member, exit 0', async () => {
    const dir = await tempDir('tally-up-');
    const base = await freeBasePort();
    // npm start runs `exec node dist/cli/main.js cluster up --data-dir ./data`; later flags win.
    const npm = spawn(
      'npm',
      ['start', '--', '--base-port', String(base), '--data-dir', path.join(dir, 'data')],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } },
    );
    let out = '';
    npm.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
    try {
      const pids = await until('three members serving under npm start', () => {
        const found = servingPids(out);
        return Promise.resolve(found.length === 3 ? found : null);
      });
      expect(out).toContain('logs: warnings and errors only (LOG_LEVEL=info for more)');
      npm.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(out).toContain('tally: cluster stopped');
      for (const pid of pids) expect(alive(pid), `member pid ${pid}`).toBe(false);
    } finally {
      npm.kill('SIGKILL');
    }
  });

  it('exits 1 when every member has exited by itself', async () => {
    const dir = await tempDir('tally-up-');
    const notADir = path.join(dir, 'file');
    await fs.promises.writeFile(notADir, 'not a directory\n');
    const base = await freeBasePort();
    const up = spawnCli(['cluster', 'up', '--data-dir', notADir, '--base-port', String(base)]);
    const exit = await up.exited;
    expect(exit.code).toBe(1);
    expect(up.stdout()).toMatch(/^tally: the cluster is down: no member is running/m);
  });

  it('a bad --base-port is a usage error (exit 2) with one readable line', async () => {
    const up = spawnCli(['cluster', 'up', '--base-port', '65000']);
    const exit = await up.exited;
    expect(exit.code).toBe(2);
    expect(up.stderr()).toMatch(/^tally: .*base-port/m);
  });
});
