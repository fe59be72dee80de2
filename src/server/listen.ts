/**
 * `HOST:PORT` listen addresses (`127.0.0.1:7400`, `0.0.0.0:0`, `[::1]:7400`), parsed once so
 * the gRPC server, the metrics server and the CLI agree on what is valid.
 */
export interface HostPort {
  /** Without IPv6 brackets. */
  host: string;
  port: number;
}

const hostPortPattern = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/;

export function parseHostPort(value: string): HostPort {
  const match = hostPortPattern.exec(value);
  const port = match?.[3] === undefined ? NaN : Number(match[3]);
  const host = match?.[1] ?? match?.[2];
  if (host === undefined || !(port >= 0 && port <= 65535)) {
    throw new Error(`expected HOST:PORT (e.g. 127.0.0.1:7400), got '${value}'`);
  }
  return { host, port };
}

/** The address a local client should dial to reach a server listening on `host`. */
export function dialHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
