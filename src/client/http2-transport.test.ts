/**
 * Http2Transport against local servers that misbehave on purpose: refused connections, a
 * listener that never speaks HTTP/2, HTTP errors, hints in trailers, bytes that are not an
 * AllocateResponse. Each server listens on 127.0.0.1:0 and is closed by the test.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  decodeAllocateRequest,
  encodeResponseFrames,
  FrameReader,
  type AllocateRequestView,
} from '../core/grpc-wire';
import { Http2Transport } from './http2-transport';
import type { StreamEnd, WireResponse } from './transport';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

interface Recorded {
  responses: WireResponse[];
  end: Promise<StreamEnd>;
  events: { response(r: WireResponse): void; end(s: StreamEnd): void };
}

function recorder(): Recorded {
  const responses: WireResponse[] = [];
  let settle!: (s: StreamEnd) => void;
  const end = new Promise<StreamEnd>((resolve) => (settle = resolve));
  let ended = false;
  return {
    responses,
    end,
    events: {
      response: (r) => {
        if (ended) throw new Error('response after end');
        responses.push(r);
      },
      end: (s) => {
        if (ended) throw new Error('end twice');
        ended = true;
        settle(s);
      },
    },
  };
}

function transport(): Http2Transport {
  const t = new Http2Transport();
  cleanups.push(() => t.close());
  return t;
}

async function listen(server: net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
      }),
  );
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** An HTTP/2 server whose AllocateStream handler is `handle`; sockets are destroyed at cleanup. */
async function h2Server(
  handle: (stream: http2.ServerHttp2Stream, requests: AllocateRequestView[]) => void,
): Promise<string> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream) => {
    const requests: AllocateRequestView[] = [];
    const reader = new FrameReader(1 << 20, {
      message: (buf, start, end) => {
        const req = decodeAllocateRequest(buf, start, end);
        if (req !== null) requests.push(req);
      },
      oversized: () => undefined,
      compressed: () => undefined,
    });
    stream.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      handle(stream, requests);
    });
    stream.on('error', () => undefined);
  });
  const address = await listen(server);
  cleanups.push(() => {
    for (const s of sessions) s.destroy();
  });
  return address;
}

const okHeaders = { ':status': 200, 'content-type': 'application/grpc' };

describe('Http2Transport', () => {
  it('delivers the responses, then the OK status from the trailers; requests leave batched', async () => {
    const chunks: number[] = [];
    const address = await h2Server((stream, requests) => {
      chunks.push(requests.length);
      if (requests.length < 3) return;
      stream.respond(okHeaders, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(
        encodeResponseFrames(
          requests.map((r, i) => ({
            first: 10 + i,
            count: r.count,
            epoch: 1,
            index: 5 + i,
            correlationId: r.correlationId,
            error: null,
          })),
        ),
      );
    });
    const rec = recorder();
    const call = transport().open(address, rec.events);
    for (const id of [1, 2, 3]) call.write({ namespace: 'ns', count: id, correlationId: id });
    expect(await rec.end).toEqual({ code: GrpcStatus.OK, details: '' });
    expect(rec.responses.map((r) => [r.correlationId, r.first, r.count, r.index])).toEqual([
      [1, 10, 1, 5],
      [2, 11, 2, 6],
      [3, 12, 3, 7],
    ]);
    // The three writes of one turn arrived in one DATA chunk.
    expect(chunks).toEqual([3]);
  });

  it('passes on the status, its percent-decoded message and the tally-primary hint', async () => {
    const address = await h2Server((stream) => {
      stream.respond(
        {
          ...okHeaders,
          'grpc-status': String(GrpcStatus.FAILED_PRECONDITION),
          'grpc-message': 'standby%3A ask the primary',
          'tally-primary': '10.0.0.7:7400',
        },
        { endStream: true },
      );
    });
    const rec = recorder();
    transport().open(address, rec.events).write({ namespace: 'ns', count: 1, correlationId: 1 });
    expect(await rec.end).toEqual({
      code: GrpcStatus.FAILED_PRECONDITION,
      details: 'standby: ask the primary',
      primaryAddress: '10.0.0.7:7400',
    });
  });

  it('maps an HTTP error without grpc-status as gRPC does (503 → UNAVAILABLE)', async () => {
    const address = await h2Server((stream) => {
      stream.respond({ ':status': 503 }, { endStream: true });
    });
    const rec = recorder();
    transport().open(address, rec.events).write({ namespace: 'ns', count: 1, correlationId: 1 });
    const end = await rec.end;
    expect(end.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(end.details).toMatch(/HTTP 503/);
  });

  it('ends the call with INTERNAL when the node sends bytes that are not an AllocateResponse', async () => {
    const address = await h2Server((stream) => {
      stream.respond(okHeaders);
      stream.write(Buffer.from([0, 0, 0, 0, 2, 0x1a, 0x00])); // correlation_id as bytes
    });
    const rec = recorder();
    transport().open(address, rec.events).write({ namespace: 'ns', count: 1, correlationId: 1 });
    const end = await rec.end;
    expect(end.code).toBe(GrpcStatus.INTERNAL);
    expect(end.details).toMatch(/not a tally\.v1\.AllocateResponse/);
    expect(rec.responses).toEqual([]);
  });

  it('a refused connection ends the call with UNAVAILABLE naming the cause', async () => {
    const server = net.createServer();
    const address = await listen(server);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const rec = recorder();
    transport().open(address, rec.events).write({ namespace: 'ns', count: 1, correlationId: 1 });
    const end = await rec.end;
    expect(end.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(end.details).toMatch(/ECONNREFUSED/);
  });

  it('gives up on a node that accepts TCP but never speaks HTTP/2 (a paused process)', async () => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    const address = await listen(server);
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
    });
    const rec = recorder();
    transport().open(address, rec.events).write({ namespace: 'ns', count: 1, correlationId: 1 });
    const end = await rec.end;
    expect(end.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(end.details).toMatch(/did not complete the HTTP\/2 handshake/);
    expect(sockets.size).toBe(1);
  });

  it('cancel() ends the call with CANCELLED; the next call on the session still works', async () => {
    const address = await h2Server((stream, requests) => {
      if (requests.some((r) => r.namespace === 'answer')) {
        stream.respond({ ...okHeaders, 'grpc-status': '0' }, { endStream: true });
      }
    });
    const t = transport();
    const first = recorder();
    const call = t.open(address, first.events);
    call.write({ namespace: 'ns', count: 1, correlationId: 1 });
    setTimeout(() => call.cancel(), 50);
    expect((await first.end).code).toBe(GrpcStatus.CANCELLED);
    const second = recorder();
    t.open(address, second.events).write({ namespace: 'answer', count: 1, correlationId: 2 });
    expect((await second.end).code).toBe(GrpcStatus.OK);
  });

  it('close() ends open calls (UNAVAILABLE) and a later open reconnects', async () => {
    let streams = 0;
    const address = await h2Server((stream, requests) => {
      streams++;
      if (requests.some((r) => r.namespace === 'answer')) {
        stream.respond({ ...okHeaders, 'grpc-status': '0' }, { endStream: true });
      }
    });
    const t = transport();
    const first = recorder();
    t.open(address, first.events).write({ namespace: 'ns', count: 1, correlationId: 1 });
    while (streams === 0) await new Promise((r) => setTimeout(r, 10));
    t.close();
    const end = await first.end;
    expect(end.code).toBe(GrpcStatus.UNAVAILABLE);
    const second = recorder();
    t.open(address, second.events).write({ namespace: 'answer', count: 1, correlationId: 2 });
    expect((await second.end).code).toBe(GrpcStatus.OK);
  });
});
