/**
 * The metrics port: plain node:http for Prometheus and for probes that cannot speak gRPC.
 *   GET /metrics  Prometheus text format
 *   GET /healthz  200 while the process is fine (liveness), 503 otherwise
 *   GET /readyz   200 while it should get client traffic (a node: it serves allocations;
 *                 the controller: it serves), 503 otherwise
 *   GET /role     JSON: what the process is now ({"role","state","epoch",…})
 * Anything else: 404.
 */
import http from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { parseHostPort } from './listen';

/** Answers for /healthz, /readyz and /role. */
export interface Probes {
  live(): boolean;
  /** Why not ready, or null when ready. */
  notReady(): string | null;
  role(): Record<string, unknown>;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

const text = { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' };

function probe(res: http.ServerResponse, pathname: string, probes: Probes): void {
  if (pathname === '/healthz') {
    const live = probes.live();
    res.writeHead(live ? 200 : 503, text).end(live ? 'ok\n' : 'failed\n');
  } else if (pathname === '/readyz') {
    const why = probes.notReady();
    res.writeHead(why === null ? 200 : 503, text).end(why === null ? 'ready\n' : `${why}\n`);
  } else {
    const body = `${JSON.stringify(probes.role())}\n`;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(body);
  }
}

const probePaths = new Set(['/healthz', '/readyz', '/role']);

function handle(registry: Registry, logger: Logger, probes?: Probes): http.RequestListener {
  return (req, res) => {
    const pathname = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...text, Allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    if (probes !== undefined && probePaths.has(pathname)) {
      try {
        probe(res, pathname, probes);
      } catch (err) {
        logger.error({ err }, 'metrics: probe failed');
        res.writeHead(500, text).end('probe failed\n');
      }
      return;
    }
    if (pathname !== '/metrics') {
      res.writeHead(404, text).end('not found\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(body),
      (err: unknown) => {
        logger.error({ err }, 'metrics: collecting metrics failed');
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics collection failed\n');
      },
    );
  };
}

export async function startMetricsServer(
  listen: string,
  registry: Registry,
  logger: Logger,
  probes?: Probes,
): Promise<MetricsServer> {
  let host: string, port: number;
  try {
    ({ host, port } = parseHostPort(listen));
  } catch (err) {
    throw new Error(`metrics: ${(err as Error).message}`);
  }
  const server = http.createServer(handle(registry, logger, probes));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new Error(`metrics: cannot listen on ${listen}: ${err.message}`)),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  return {
    port: boundPort,
    close: () =>
      new Promise<void>((resolve) => {
        // Scrapers keep connections alive; close them so shutdown does not wait on them.
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
