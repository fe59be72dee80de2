/**
 * `HOST:PORT` listen addresses (`127.0.0.1:7400`, `0.0.0.0:0`, `[::1]:7400`), parsed once so
 * the gRPC server, the metrics server and the CLI agree on what is valid.
 */
import net from 'node:net';

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

/**
 * Connects to `address` (HOST:PORT) and lets `watch` settle the answer from what happens on the
 * socket; `fallback` when the address does not parse or nothing settles within timeoutMs. The
 * socket is destroyed once settled.
 */
export function probeTcp<T>(
  address: string,
  timeoutMs: number,
  fallback: T,
  watch: (socket: net.Socket, settle: (answer: T) => void) => void,
): Promise<T> {
  let target: HostPort;
  try {
    target = parseHostPort(address);
  } catch {
    return Promise.resolve(fallback);
  }
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port });
    let settled = false;
    const settle = (answer: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => settle(fallback), timeoutMs);
    watch(socket, settle);
  });
}

/** A port on 127.0.0.1 that was free a moment ago (for a process that must restart on it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
