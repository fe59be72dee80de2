/**
 * The node's gRPC port. Tally accepts the TCP connections itself: each starts as a
 * UnaryConnection, which keeps connections that open with a unary Counter/Allocate call
 * (served at the frame level) and hands every other one to grpc-js through its connection
 * injector, bytes and all: Admin, Replication, Health, reflection, AllocateStream, and
 * clients that open with any of them, are served by grpc-js exactly as before.
 */
import * as net from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import type { AllocateRequestView } from '../../core/grpc-wire';
import type { Metrics } from '../../core/metrics';
import type { AllocateResult } from '../../node/types';
import type { GrpcError } from '../status';
import { type CounterMethod, type UnaryHost, UnaryConnection } from './unary-connection';

/** What the frontend needs from the Counter service. */
export interface UnaryService {
  readonly draining: boolean;
  frameAllocate(
    method: CounterMethod,
    request: AllocateRequestView,
    deadlineUnixMs: number | undefined,
    done: (status: GrpcError | null, result: AllocateResult | undefined) => boolean,
  ): void;
  frameRefused(method: CounterMethod, startMs: number, code: number): void;
}

export class Frontend {
  private readonly server: net.Server;
  private readonly injector: grpc.ConnectionInjector;
  private readonly connections = new Set<UnaryConnection>();
  private readonly sockets = new Set<net.Socket>();
  private closing = false;

  constructor(
    grpcServer: grpc.Server,
    credentials: grpc.ServerCredentials,
    service: UnaryService,
    metrics: Metrics,
  ) {
    this.injector = grpcServer.createConnectionInjector(credentials);
    const grpcJs = metrics.connections.labels('grpc-js');
    const frameLevel = metrics.connections.labels('frame');
    grpcJs.inc(0);
    frameLevel.inc(0);
    const host: UnaryHost = {
      handoff: (socket) => {
        grpcJs.inc();
        this.injector.injectConnection(socket);
      },
      allocate: (method, request, deadline, done) =>
        service.frameAllocate(method, request, deadline, done),
      refused: (method, startMs, code) => service.frameRefused(method, startMs, code),
      get draining() {
        return service.draining;
      },
      fast: () => frameLevel.inc(),
      closed: (conn) => void this.connections.delete(conn),
    };
    this.server = net.createServer({ noDelay: true }, (socket) => {
      if (this.closing) return socket.destroy();
      // A client host that vanished (no FIN, no RST) is found by TCP keepalive; grpc-js's
      // own pings cover the connections it serves.
      socket.setKeepAlive(true, 30_000);
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      this.connections.add(new UnaryConnection(socket, host));
    });
  }

  /** Binds host:port (port 0: any free one); resolves with the port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port, exclusive: true }, () => {
        this.server.removeListener('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  /**
   * Stops accepting; frame-level connections get GOAWAY and close once their open calls are
   * answered and written (grpc-js drains its own). After graceMs what is left is destroyed.
   */
  close(graceMs: number): Promise<void> {
    this.closing = true;
    this.server.close();
    for (const conn of this.connections) conn.drain();
    return new Promise((resolve) => {
      const deadline = Date.now() + graceMs;
      // Until every socket of ours has closed: one that has only been ended may still hold
      // answers in its write queue, and destroying it would drop them (acknowledged, durable
      // allocations the client never hears of).
      const poll = (): void => {
        if (this.connections.size === 0) return resolve();
        if (Date.now() > deadline) {
          for (const c of this.connections) c.destroy();
          return resolve();
        }
        setTimeout(poll, 20).unref();
      };
      poll();
    });
  }

  /** Destroys every connection still open (after grpc-js has stopped). */
  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
    this.injector.destroy();
  }
}
