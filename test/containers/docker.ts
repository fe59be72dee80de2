/**
 * What the container tests share: is a Docker engine reachable (skip with a reason where it
 * is not, fail where REQUIRE_DOCKER=1 says it must be), the image built once per run from the
 * repository's Dockerfile, and containers published on 127.0.0.1 only.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GenericContainer } from 'testcontainers';
import { repoRoot } from '../integration/serve-process';

/** The image the tests build and run (compose reads TALLY_IMAGE too). */
export const testImage = process.env.TALLY_TEST_IMAGE ?? 'tally:test';

// Known to work on this machine kind (no registry reachable; dockerd from Debian).
process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= 'localhost';

/**
 * Why the container tests cannot run here (null when they can): the docker CLI must answer
 * and reach an engine. With REQUIRE_DOCKER=1 (CI) that is an error, not a skip.
 */
export function dockerUnavailable(): string | null {
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  let why: string | null = null;
  if (r.error !== undefined) why = `the docker CLI cannot run (${r.error.message})`;
  else if (r.status !== 0) {
    const first = (r.stderr || r.stdout).trim().split('\n')[0] ?? '';
    why = `no Docker engine reachable (${first})`;
  }
  if (why !== null && process.env.REQUIRE_DOCKER === '1') {
    throw new Error(`container tests: REQUIRE_DOCKER=1 but ${why}`);
  }
  if (why !== null) {
    console.warn(`container tests skipped: ${why} (set REQUIRE_DOCKER=1 to make this an error)`);
  }
  return why;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve(output);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${output.slice(-3000)}`));
    });
  });
}

export function docker(...args: string[]): Promise<string> {
  return run('docker', args);
}

/**
 * Builds the image once per test run: the first file to get here builds, the others wait on
 * the lock file. `--network host`: npm ci and apt inside the build reach their registries the
 * way this host does. The base image must exist (scripts/docker-base-image.sh where no
 * registry is reachable).
 */
export async function ensureImage(): Promise<void> {
  const lock = path.join(os.tmpdir(), `tally-image-build-${process.ppid}.lock`);
  const done = `${lock}.done`;
  for (;;) {
    if (fs.existsSync(done)) return;
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      // A lock left by a run that was killed mid-build: builds take a minute or two.
      const age =
        Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 15 * 60_000) fs.rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    await docker('build', '--network', 'host', '-q', '-t', testImage, '.');
    fs.writeFileSync(done, '');
  } finally {
    fs.rmdirSync(lock);
  }
}

/**
 * A GenericContainer whose published ports bind 127.0.0.1 only (testcontainers binds every
 * interface by default).
 */
export class LoopbackContainer extends GenericContainer {
  onLoopback(): this {
    const bindings = this.hostConfig.PortBindings as
      Record<string, Array<{ HostPort?: string; HostIp?: string }>> | undefined;
    for (const list of Object.values(bindings ?? {})) {
      for (const b of list) b.HostIp = '127.0.0.1';
    }
    return this;
  }
}
