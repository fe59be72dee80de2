/**
 * tally.v1.Counter at the HTTP/2 level, against a real `tally serve` process: the Counter
 * service is served on raw http2 streams (src/server/counter-service.ts), so what grpc-js
 * used to check for us is checked here with a hand-driven HTTP/2 client — framing across
 * DATA frames, compression, content type, grpc-timeout, message counts, a slow reader.
 */
import http2 from 'node:http2';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeAllocateResponse as decodeResponse,
  encodeAllocateRequest as encodeRequest,
} from '../../src/testing/counter-codec';
import {
  allocate,
  assertBuilt,
  counterClient,
  killChildren,
  lastIdOf,
  removeTempDirs,
  type Server,
  sleep,
  startServe,
  tempDir,
} from './serve-process';

const streamPath = '/tally.v1.Counter/AllocateStream';
const unaryPath = '/tally.v1.Counter/Allocate';

function frame(body: Buffer, flag = 0): Buffer {
  const header = Buffer.alloc(5);
  header[0] = flag;
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

function request(namespace: string, count: number, correlationId: string): Buffer {
  return frame(encodeRequest({ namespace, count, correlationId }));
}

/** Splits a response body into its gRPC messages. */
function messages(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < body.length;) {
    const len = body.readUInt32BE(at + 1);
    out.push(body.subarray(at + 5, at + 5 + len));
    at += 5 + len;
  }
  return out;
}

/** A gRPC call on `session`, headers only; the caller writes the body. */
function openCall(
  session: http2.ClientHttp2Session,
  callPath: string,
  extraHeaders: http2.OutgoingHttpHeaders = {},
): http2.ClientHttp2Stream {
  return session.request({
    ':method': 'POST',
    ':path': callPath,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...extraHeaders,
  });
}

interface Outcome {
  status: number;
  /** grpc-status from trailers, or from headers for a trailers-only response. */
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  headers: http2.IncomingHttpHeaders;
  responses: ReturnType<typeof decodeResponse>[];
}

/**
 * One call on its own HTTP/2 session: `send` writes the request body (each element its own
 * write, each waiting for the previous one to be flushed, so they leave as separate DATA
 * frames), then ends the request unless `keepOpen`.
 */
async function rawCall(
  target: string,
  callPath: string,
  send: Buffer[],
  extraHeaders: http2.OutgoingHttpHeaders = {},
): Promise<Outcome> {
  const session = http2.connect(`http://${target}`);
  session.on('error', () => undefined);
  try {
    const stream = openCall(session, callPath, extraHeaders);
    const chunks: Buffer[] = [];
    const done = new Promise<Outcome>((resolve, reject) => {
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      stream.on('response', (h) => (headers = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', reject);
      stream.on('close', () => {
        const final = trailers['grpc-status'] !== undefined ? trailers : headers;
        resolve({
          status: Number(headers[':status']),
          grpcStatus: final['grpc-status'] as string | undefined,
          grpcMessage: final['grpc-message'] as string | undefined,
          headers,
          responses: messages(Buffer.concat(chunks)).map((m) => decodeResponse(m)),
        });
      });
    });
    for (const piece of send) {
      if (stream.destroyed) break;
      await new Promise<void>((resolve) => stream.write(piece, () => setImmediate(resolve)));
    }
    if (!stream.destroyed) stream.end();
    return await done;
  } finally {
    session.close();
  }
}

beforeAll(() => assertBuilt());
afterAll(async () => {
  await killChildren();
  await removeTempDirs();
});

describe('Counter on the wire', () => {
  let server: Server;

  beforeAll(async () => {
    server = await startServe(path.join(await tempDir(), 'data'));
  });

  it('echoes a uint64 correlation id above 2^53 exactly', async () => {
    const id = '18446744073709551615';
    const out = await rawCall(server.target, streamPath, [request('wire', 1, id)]);
    expect(out.grpcStatus).toBe('0');
    expect(out.responses).toHaveLength(1);
    expect(out.responses[0]).toMatchObject({ correlationId: id, count: 1, error: null });
  });

  it('answers requests cut into one-byte DATA frames, each exactly once', async () => {
    const body = Buffer.concat([1, 2, 3].map((i) => request('bytewise', 2, String(i))));
    const pieces = [...body].map((b) => Buffer.from([b]));
    const out = await rawCall(server.target, streamPath, pieces);
    expect(out.grpcStatus).toBe('0');
    expect(out.responses.map((r) => r.correlationId).sort()).toEqual(['1', '2', '3']);
    const firsts = out.responses.map((r) => Number(r.first)).sort((a, b) => a - b);
    expect(firsts).toEqual([1, 3, 5]);
  });

  it('ends a stream whose request is cut off by the end of the stream, answering the whole ones', async () => {
    const whole = request('cut', 1, '1');
    const cut = request('cut', 1, '2').subarray(0, 7);
    const out = await rawCall(server.target, streamPath, [Buffer.concat([whole, cut])]);
    expect(out.grpcStatus).toBe('3'); // INVALID_ARGUMENT
    expect(decodeURI(out.grpcMessage ?? '')).toMatch(/ended inside a message/);
    expect(out.responses.map((r) => r.correlationId)).toEqual(['1']);
  });

  it('refuses a compressed message with UNIMPLEMENTED and says which encoding it accepts', async () => {
    const body = frame(encodeRequest({ namespace: 'zip', count: 1 }), 1);
    for (const callPath of [streamPath, unaryPath]) {
      const out = await rawCall(server.target, callPath, [body], { 'grpc-encoding': 'gzip' });
      expect(out.grpcStatus, callPath).toBe('12');
      expect(out.headers['grpc-accept-encoding']).toBe('identity');
    }
    // A request after the compressed one, in the same DATA frame, is not read at all.
    const after = request('zip-after', 1, '2');
    const out = await rawCall(server.target, streamPath, [Buffer.concat([body, after])]);
    expect(out.grpcStatus).toBe('12');
    expect(out.responses).toEqual([]);
    expect(await lastIdOf(server.target, 'zip-after')).toBe(0);
  });

  it('answers a content type that is not gRPC with HTTP 415', async () => {
    const out = await rawCall(server.target, unaryPath, [request('ct', 1, '0')], {
      'content-type': 'text/plain',
    });
    expect(out.status).toBe(415);
  });

  it('refuses a unary call with zero or two messages, and an invalid grpc-timeout', async () => {
    const one = request('unary', 1, '0');
    const none = await rawCall(server.target, unaryPath, []);
    const two = await rawCall(server.target, unaryPath, [Buffer.concat([one, one])]);
    for (const out of [none, two]) {
      expect(out.grpcStatus).toBe('3');
      expect(decodeURI(out.grpcMessage ?? '')).toBe(
        'server: unary Allocate takes exactly one request message',
      );
    }
    const badTimeout = await rawCall(server.target, unaryPath, [one], { 'grpc-timeout': 'soon' });
    expect(badTimeout.grpcStatus).toBe('3');
    expect(decodeURI(badTimeout.grpcMessage ?? '')).toMatch(/invalid grpc-timeout/);
    // The refused calls allocated nothing: the next ID in the namespace is 1.
    const ok = await rawCall(server.target, unaryPath, [one], { 'grpc-timeout': '5S' });
    expect(ok.grpcStatus).toBe('0');
    expect(ok.responses[0]?.first).toBe('1');
  });

  it('a stream client that stops reading is throttled, not buffered without bound; all are answered once it reads', async () => {
    const total = 200_000;
    const session = http2.connect(`http://${server.target}`);
    session.on('error', () => undefined);
    const client = counterClient(server.target);
    try {
      const stream = openCall(session, streamPath);
      stream.pause(); // read nothing yet
      const body = Buffer.concat(
        Array.from({ length: total }, (_, i) => request('slow-reader', 1, String(i + 1))),
      );
      let written = false;
      stream.write(body, () => (written = true));
      // Others are served meanwhile.
      const other = await allocate(client, 'while-throttled', 1);
      expect(other.first).toBe('1');
      // The server stops taking this stream's requests: wait until its count stands still,
      // then it must be far short of what was sent (unbounded buffering comes close to total).
      let allocated = -1;
      for (let still = 0; still < 3;) {
        await sleep(100);
        const now = await lastIdOf(server.target, 'slow-reader');
        still = now === allocated ? still + 1 : 0;
        allocated = now;
      }
      expect(allocated).toBeGreaterThan(0);
      expect(allocated).toBeLessThan(total / 2);
      expect(written).toBe(false);

      const chunks: Buffer[] = [];
      const closed = new Promise<void>((resolve) => stream.on('close', resolve));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.end();
      stream.resume();
      await closed;
      const responses = messages(Buffer.concat(chunks)).map((m) => decodeResponse(m));
      expect(responses).toHaveLength(total);
      expect(new Set(responses.map((r) => r.correlationId)).size).toBe(total);
      expect(responses.every((r) => r.error === null && r.count === 1)).toBe(true);
    } finally {
      client.close();
      session.close();
    }
  });
});
