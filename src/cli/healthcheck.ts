#!/usr/bin/env node
/**
 * The container HEALTHCHECK: one grpc.health.v1.Health/Check call, exit 0 when SERVING.
 *
 *   node dist/cli/healthcheck.js [HOST:PORT] [SERVICE]
 *
 * The address defaults to this container's own listen port (TALLY_LISTEN for a node,
 * TALLY_CONTROLLER_LISTEN when PID 1 runs `controller`; 0.0.0.0 is dialled as 127.0.0.1;
 * TALLY_HEALTHCHECK_TARGET overrides), the service to
 * "" (the process is fine; a standby is healthy too). SERVICE tally.v1.Counter asks whether
 * this node serves allocations (the primary). Kept small: no commander, no proto files.
 */
import { readFileSync } from 'node:fs';
import { checkHealth } from '../server/health-probe';
import { dialHost, parseHostPort } from '../server/listen';

const deadlineMs = Number(process.env.TALLY_HEALTHCHECK_TIMEOUT_MS ?? 3000);

/** In a container, PID 1 (tini) runs `… main.js controller` or `… main.js serve`. */
function runsController(): boolean {
  try {
    const args = readFileSync('/proc/1/cmdline', 'utf8').split('\0');
    return args.includes('controller');
  } catch {
    return false;
  }
}

function defaultTarget(): string {
  const listen =
    process.env.TALLY_HEALTHCHECK_TARGET ??
    (runsController() ? process.env.TALLY_CONTROLLER_LISTEN : process.env.TALLY_LISTEN) ??
    '127.0.0.1:7400';
  const { host, port } = parseHostPort(listen);
  return `${dialHost(host)}:${port}`;
}

async function main(): Promise<number> {
  const [targetArg, serviceArg] = process.argv.slice(2);
  const target = targetArg ?? defaultTarget();
  const service = serviceArg ?? process.env.TALLY_HEALTHCHECK_SERVICE ?? '';
  try {
    const status = await checkHealth(target, service, deadlineMs);
    process.stdout.write(`healthcheck: ${target} ${service || '(server)'} ${status}\n`);
    return status === 'SERVING' ? 0 : 1;
  } catch (err) {
    process.stdout.write(`healthcheck: ${target}: ${(err as Error).message}\n`);
    return 1;
  }
}

void main().then((code) => process.exit(code));
