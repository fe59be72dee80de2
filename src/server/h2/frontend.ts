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
import type { AllocateResult } from '../../node/types';
import type { GrpcError } from '../status';
import { type UnaryHost, UnaryConnection } from './unary-connection';

/** What the frontend needs from the Counter service. */
export interface UnaryService {
  readonly draining: boolean;
  unaryAllocate(
    request: AllocateRequestView,
    deadlineUnixMs: number | undefined,
    done: (status: GrpcError | null, result: AllocateResult | undefined) => boolean,
  ): void;
  unaryRefused(startMs: number, code: number): void;
}

export interface FrontendCounts {
  /** Connections served at the frame level, and handed to grpc-js, since the start. */
  frameLevel: number;
  grpcJs: number;
}

export class Frontend {
  private readonly server: net.Server;
  private readonly injector: grpc.ConnectionInjector;
  private readonly connections = new Set<UnaryConnection>();
  private readonly sockets = new Set<net.Socket>();
  readonly counts: FrontendCounts = { frameLevel: 0, grpcJs: 0 };
  private closing = false;

  constructor(grpcServer: grpc.Server, credentials: grpc.ServerCredentials, service: UnaryService) {
    this.injector = grpcServer.createConnectionInjector(credentials);
    const host: UnaryHost = {
      handoff: (socket) => {
        this.counts.grpcJs++;
        this.injector.injectConnection(socket);
      },
      allocate: (request, deadline, done) => service.unaryAllocate(request, deadline, done),
      refused: (startMs, code) => service.unaryRefused(startMs, code),
      get draining() {
        return service.draining;
      },
      fast: () => void this.counts.frameLevel++,
      closed: (conn) => void this.connections.delete(conn),
    };
    this.server = net.createServer({ noDelay: true }, (socket) => {
      if (this.closing) return socket.destroy();
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
   * answered (grpc-js drains its own). After graceMs whatever is left is destroyed.
   */
  close(graceMs: number): Promise<void> {
    this.closing = true;
    this.server.close();
    for (const conn of this.connections) conn.drain();
    return new Promise((resolve) => {
      const deadline = Date.now() + graceMs;
      const poll = (): void => {
        const open = [...this.connections].filter((c) => c.isFast);
        if (open.length === 0) return resolve();
        if (Date.now() > deadline) {
          for (const c of open) c.destroy();
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
