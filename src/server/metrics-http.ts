/**
 * Prometheus scrape endpoint: plain node:http, GET /metrics, 404 for everything else.
 */
import http from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { parseHostPort } from './listen';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

function handle(registry: Registry, logger: Logger): http.RequestListener {
  return (req, res) => {
    const pathname = (req.url ?? '/').split('?', 1)[0];
    if (pathname !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
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
): Promise<MetricsServer> {
  let host: string, port: number;
  try {
    ({ host, port } = parseHostPort(listen));
  } catch (err) {
    throw new Error(`metrics: ${(err as Error).message}`);
  }
  const server = http.createServer(handle(registry, logger));
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
