/**
 * The node's gRPC port against a real `tally serve`: connections that open with a unary
 * Allocate are served at the HTTP/2 frame level (src/server/h2/), every other one by grpc-js.
 * Driven by a hand-written HTTP/2 client (to control the order of frames: a client that waits
 * for the server's SETTINGS as grpc-go does, a closed flow-control window, protocol errors)
 * and by grpc-js and node:http2 clients sharing one connection between services.
 */
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectionPreface,
  errorCode,
  flag,
  frame,
  frameHeaderLength,
  frameType,
  setting,
  windowUpdateFrame,
} from '../../src/server/h2/frames';
import { counterErrors } from '../../src/server/counter-errors';
import { encodeLiteralField, HpackDecoder, type HeaderFields } from '../../src/server/h2/hpack';
import {
  decodeAllocateResponse as decodeResponse,
  encodeAllocateRequest as encodeRequest,
} from '../../src/testing/counter-codec';
import {
  adminClient,
  allocate,
  assertBuilt,
  counterClient,
  fetchText,
  killChildren,
  lastIdOf,
  removeTempDirs,
  type Server,
  sleep,
  startServe,
  tempDir,
  until,
} from './serve-process';

const unaryPath = '/tally.v1.Counter/Allocate';
const statusPath = '/tally.v1.Admin/Status';

function grpcMessage(body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

interface Received {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** HEADERS: the decoded fields. */
  fields?: HeaderFields;
}

/** A minimal HTTP/2 client over a raw socket: it sends exactly the frames a test asks for. */
class RawClient {
  readonly frames: Received[] = [];
  private input = Buffer.alloc(0);
  private readonly decoder = new HpackDecoder();
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.input = Buffer.concat([this.input, chunk]);
      while (this.input.length >= frameHeaderLength) {
        const length = this.input.readUIntBE(0, 3);
        if (this.input.length < frameHeaderLength + length) break;
        const f: Received = {
          type: this.input[3] as number,
          flags: this.input[4] as number,
          streamId: this.input.readUInt32BE(5) & 0x7fffffff,
          payload: Buffer.from(this.input.subarray(frameHeaderLength, frameHeaderLength + length)),
        };
        if (f.type === frameType.headers) {
          f.fields = new Map();
          this.decoder.decode(f.payload, 0, f.payload.length, f.fields, 1 << 20);
        }
        this.frames.push(f);
        this.input = this.input.subarray(frameHeaderLength + length);
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async connect(target: string): Promise<RawClient> {
    const [host, port] = target.split(':');
    const socket = net.connect(Number(port), host);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits (up to 10 s) until `pred` holds over the frames received. */
  async until(what: string, pred: (frames: Received[]) => boolean): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!pred(this.frames)) {
      if (this.closed) throw new Error(`test: connection closed waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`test: timed out waiting for ${what}`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(100)]);
    }
  }

  send(...buffers: Buffer[]): void {
    this.socket.write(Buffer.concat(buffers));
  }

  static settings(pairs: Array<[number, number]> = []): Buffer {
    const payload = Buffer.alloc(6 * pairs.length);
    pairs.forEach(([id, value], i) => {
      payload.writeUInt16BE(id, 6 * i);
      payload.writeUInt32BE(value, 6 * i + 2);
    });
    return frame(frameType.settings, 0, 0, payload);
  }

  /** HEADERS (END_HEADERS) for a gRPC call on `streamId`, then its one message + END_STREAM. */
  static call(streamId: number, callPath: string, message: Buffer): Buffer {
    const block = Buffer.concat([
      encodeLiteralField(':method', 'POST'),
      encodeLiteralField(':scheme', 'http'),
      encodeLiteralField(':path', callPath),
      encodeLiteralField(':authority', 'tally'),
      encodeLiteralField('content-type', 'application/grpc'),
      encodeLiteralField('te', 'trailers'),
    ]);
    return Buffer.concat([
      frame(frameType.headers, flag.endHeaders, streamId, block),
      frame(frameType.data, flag.endStream, streamId, grpcMessage(message)),
    ]);
  }

  /** The stream's grpc-status once its END_STREAM came (from trailers or trailers-only). */
  static grpcStatus(frames: Received[], streamId: number): string | undefined {
    const end = frames.find(
      (f) => f.streamId === streamId && f.type === frameType.headers && f.flags & flag.endStream,
    );
    return end?.fields?.get('grpc-status');
  }

  close(): void {
    this.socket.destroy();
  }
}

const ended = (streamId: number) => (frames: Received[]) =>
  frames.some(
    (f) =>
      f.streamId === streamId &&
      (f.type === frameType.rstStream ||
        ((f.type === frameType.headers || f.type === frameType.data) &&
          (f.flags & flag.endStream) !== 0)),
  );

async function connections(server: Server): Promise<Record<string, number>> {
  const { body: text } = await fetchText(`http://127.0.0.1:${server.metricsPort}/metrics`);
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^tally_server_connections_total\{served_by="([^"]+)"\} (\d+)/gm)) {
    out[m[1] as string] = Number(m[2]);
  }
  return out;
}

beforeAll(() => assertBuilt());
afterAll(async () => {
  await killChildren();
  await removeTempDirs();
});

describe('the gRPC port: frame-level unary Allocate beside grpc-js', () => {
  let server: Server;

  beforeAll(async () => {
    server = await startServe(path.join(await tempDir(), 'data'));
  });

  it("serves a client that waits for the server's SETTINGS first (as grpc-go does), on both paths", async () => {
    for (const [callPath, message, servedBy] of [
      [unaryPath, encodeRequest({ namespace: 'go-like', count: 3 }), 'frame'],
      [statusPath, Buffer.alloc(0), 'grpc-js'],
    ] as const) {
      const before = await connections(server);
      const c = await RawClient.connect(server.target);
      try {
        c.send(connectionPreface, RawClient.settings());
        await c.until('the server SETTINGS', (fs) =>
          fs.some((f) => f.type === frameType.settings && (f.flags & flag.ack) === 0),
        );
        c.send(frame(frameType.settings, flag.ack, 0), RawClient.call(1, callPath, message));
        await c.until(`the answer on ${callPath}`, ended(1));
        // No GOAWAY with an error: grpc-js never saw the ACK of SETTINGS it did not send.
        const goaway = c.frames.find((f) => f.type === frameType.goaway);
        expect(goaway?.payload.readUInt32BE(4) ?? 0, callPath).toBe(errorCode.noError);
        expect(RawClient.grpcStatus(c.frames, 1), callPath).toBe('0');
        if (callPath === unaryPath) {
          const data = c.frames.find((f) => f.type === frameType.data && f.streamId === 1);
          const res = decodeResponse((data as Received).payload.subarray(5));
          expect(res).toMatchObject({ first: '1', count: 3, error: null });
        }
      } finally {
        c.close();
      }
      const after = await connections(server);
      expect((after[servedBy] ?? 0) - (before[servedBy] ?? 0), callPath).toBe(1);
    }
  });

  it('AllocateStream at the frame level: pipelined answers with their correlation ids, then OK trailers', async () => {
    const before = await connections(server);
    const session = http2.connect(`http://${server.target}`);
    session.on('error', () => undefined);
    try {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/tally.v1.Counter/AllocateStream',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      const chunks: Buffer[] = [];
      let trailers: http2.IncomingHttpHeaders = {};
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('trailers', (t) => (trailers = t));
      const requests = [1, 2, 3].map((i) =>
        grpcMessage(
          encodeRequest({ namespace: 'stream-frame', count: i, correlationId: String(10 + i) }),
        ),
      );
      stream.end(Buffer.concat(requests));
      await new Promise((resolve) => stream.on('close', resolve));
      expect(trailers['grpc-status']).toBe('0');
      const body = Buffer.concat(chunks);
      const answers = [];
      for (let at = 0; at < body.length; at += 5 + body.readUInt32BE(at + 1)) {
        answers.push(decodeResponse(body.subarray(at + 5, at + 5 + body.readUInt32BE(at + 1))));
      }
      expect(answers.map((a) => [a.correlationId, a.count]).sort()).toEqual([
        ['11', 1],
        ['12', 2],
        ['13', 3],
      ]);
      // 1 + 2 + 3 IDs, no overlap: the first IDs are 1, 2 and 4 in some order.
      expect(answers.map((a) => Number(a.first)).sort((x, y) => x - y)).toEqual([1, 2, 4]);
    } finally {
      session.destroy();
    }
    const after = await connections(server);
    expect((after.frame ?? 0) - (before.frame ?? 0)).toBe(1);
  });

  it('a grpc-js channel that calls Allocate, then Admin, then Allocate again gets every answer', async () => {
    const counter = counterClient(server.target);
    const admin = adminClient(server.target); // same target and options: one shared connection
    try {
      const a = await allocate(counter, 'mixed', 1);
      const status = await new Promise<unknown>((resolve, reject) =>
        admin.status({}, { deadline: Date.now() + 10_000 }, (err, res) =>
          err === null ? resolve(res) : reject(err),
        ),
      );
      expect(status).toBeDefined();
      const b = await allocate(counter, 'mixed', 1);
      expect(Number(b.first)).toBeGreaterThan(Number(a.first));
    } finally {
      counter.close();
      admin.close();
    }
  });

  it('holds an answer while the client has closed its window, and sends it when it opens', async () => {
    const c = await RawClient.connect(server.target);
    try {
      c.send(
        connectionPreface,
        RawClient.settings([[setting.initialWindowSize, 0]]),
        RawClient.call(1, unaryPath, encodeRequest({ namespace: 'window', count: 1 })),
      );
      // The allocation is made (durable) while the answer waits: the next ID is 2 …
      const probe = counterClient(server.target);
      try {
        const next = await allocate(probe, 'window', 1);
        expect(next.first).toBe('2');
      } finally {
        probe.close();
      }
      await sleep(200);
      // … and no DATA went out on stream 1: its window is 0.
      expect(c.frames.some((f) => f.streamId === 1 && f.type === frameType.data)).toBe(false);
      c.send(windowUpdateFrame(1, 1000));
      await c.until('the answer after WINDOW_UPDATE', ended(1));
      expect(RawClient.grpcStatus(c.frames, 1)).toBe('0');
      const data = c.frames.find((f) => f.type === frameType.data && f.streamId === 1);
      expect(decodeResponse((data as Received).payload.subarray(5)).first).toBe('1');
    } finally {
      c.close();
    }
  });

  it('many calls on one connection, some reset by the client: every answer unique, the rest unharmed', async () => {
    const session = http2.connect(`http://${server.target}`);
    session.on('error', () => undefined);
    try {
      const body = grpcMessage(encodeRequest({ namespace: 'many', count: 2 }));
      const calls = Array.from({ length: 400 }, (_, i) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': unaryPath,
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        stream.on('error', () => undefined);
        stream.end(body);
        if (i % 40 === 7) stream.close(http2.constants.NGHTTP2_CANCEL);
        return new Promise<{ first: number | null; cancelled: boolean }>((resolve) => {
          const chunks: Buffer[] = [];
          let status: string | undefined;
          stream.on('data', (d: Buffer) => chunks.push(d));
          stream.on('trailers', (t) => (status = t['grpc-status'] as string));
          stream.on('close', () => {
            const all = Buffer.concat(chunks);
            const ok = status === '0' && all.length > 5;
            resolve({
              first: ok ? Number(decodeResponse(all.subarray(5)).first) : null,
              cancelled: i % 40 === 7,
            });
          });
        });
      });
      const results = await Promise.all(calls);
      const answered = results.filter((r) => !r.cancelled).map((r) => r.first);
      expect(answered.every((f) => f !== null)).toBe(true);
      expect(new Set(answered).size).toBe(answered.length);
    } finally {
      session.destroy();
    }
    // The node still serves.
    const probe = counterClient(server.target);
    try {
      expect(Number((await allocate(probe, 'many', 1)).first)).toBeGreaterThan(0);
    } finally {
      probe.close();
    }
  });

  it('a protocol error ends that connection only (GOAWAY PROTOCOL_ERROR); others go on', async () => {
    const c = await RawClient.connect(server.target);
    try {
      c.send(
        connectionPreface,
        RawClient.settings(),
        RawClient.call(1, unaryPath, encodeRequest({ namespace: 'bad', count: 1 })),
      );
      await c.until('the first answer', ended(1));
      c.send(frame(frameType.data, 0, 0, Buffer.from('x'))); // DATA on stream 0
      await c.until('GOAWAY', (fs) => fs.some((f) => f.type === frameType.goaway));
      const goaway = c.frames.find((f) => f.type === frameType.goaway) as Received;
      expect(goaway.payload.readUInt32BE(4)).toBe(errorCode.protocol);
    } finally {
      c.close();
    }
    const probe = counterClient(server.target);
    try {
      expect((await allocate(probe, 'bad', 1)).first).toBe('2');
    } finally {
      probe.close();
    }
  });

  it('a padded DATA frame too short for its padding (also an empty one) is a protocol error', async () => {
    for (const payload of [Buffer.alloc(0), Buffer.from([5, 0])]) {
      const c = await RawClient.connect(server.target);
      try {
        const block = Buffer.concat([
          encodeLiteralField(':method', 'POST'),
          encodeLiteralField(':path', unaryPath),
          encodeLiteralField('content-type', 'application/grpc'),
        ]);
        c.send(
          connectionPreface,
          RawClient.settings(),
          frame(frameType.headers, flag.endHeaders, 1, block),
          frame(frameType.data, flag.padded, 1, payload),
        );
        await c.until('GOAWAY', (fs) => fs.some((f) => f.type === frameType.goaway));
        const goaway = c.frames.find((f) => f.type === frameType.goaway) as Received;
        expect(goaway.payload.readUInt32BE(4), `payload ${payload.toString('hex')}`).toBe(
          errorCode.protocol,
        );
      } finally {
        c.close();
      }
    }
  });

  it('bytes that are not HTTP/2 are left to grpc-js, which closes the connection; the node serves on', async () => {
    const socket = net.connect(server.grpcPort, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.resume(); // read what comes: the close is seen only after the end of the input
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const probe = counterClient(server.target);
    try {
      expect((await allocate(probe, 'after-http1', 1)).first).toBe('1');
    } finally {
      probe.close();
    }
  });
});

describe('the gRPC port: review (sniff and handoff edge cases)', () => {
  let server: Server;

  beforeAll(async () => {
    server = await startServe(path.join(await tempDir(), 'data'));
  });

  /** A unary call over node:http2 on `session`: its grpc-status (or the error's message). */
  function h2call(session: http2.ClientHttp2Session, callPath: string, body: Buffer) {
    return new Promise<string>((resolve) => {
      if (session.destroyed || session.closed) return resolve('session gone');
      const stream = session.request({
        ':method': 'POST',
        ':path': callPath,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let status: string | undefined;
      stream.on('trailers', (t) => (status = t['grpc-status'] as string));
      stream.on('response', (h) => {
        if (h['grpc-status'] !== undefined) status = h['grpc-status'] as string;
      });
      stream.on('error', (err) => resolve(`error: ${err.message}`));
      stream.on('close', () => resolve(status ?? `closed, rst ${stream.rstCode}`));
      stream.resume();
      stream.end(grpcMessage(body));
    });
  }

  it('a client whose preface comes after the sniff window: grpc-js never sees the ACK of our SETTINGS', async () => {
    for (const callPath of [statusPath, unaryPath]) {
      const [host, port] = server.target.split(':');
      const socket = net.connect(Number(port), host);
      await new Promise((resolve) => socket.once('connect', resolve));
      // The client's first bytes come late (a slow client, or a node whose event loop was
      // busy past the sniff window when they arrived).
      await sleep(300);
      const session = http2.connect(`http://${server.target}`, { createConnection: () => socket });
      let sessionError: string | undefined;
      let goawayCode: number | undefined;
      session.on('error', (err) => (sessionError = err.message));
      session.on('goaway', (code) => (goawayCode = code));
      try {
        const body =
          callPath === unaryPath ? encodeRequest({ namespace: 'late', count: 1 }) : Buffer.alloc(0);
        const first = await h2call(session, callPath, body);
        await sleep(300); // the client's ACK of grpc-js's SETTINGS has reached the server
        const second = await h2call(session, callPath, body);
        expect({ first, second, sessionError, goawayCode }, callPath).toEqual({
          first: '0',
          second: '0',
          sessionError: undefined,
          goawayCode: undefined,
        });
      } finally {
        session.destroy();
      }
    }
  });

  /** A connection already on the frame-level server (its first call, a unary Allocate, answered). */
  async function fastClient(settings: Array<[number, number]> = []): Promise<RawClient> {
    const c = await RawClient.connect(server.target);
    c.send(
      connectionPreface,
      RawClient.settings(settings),
      frame(frameType.settings, flag.ack, 0),
      frame(frameType.windowUpdate, 0, 0, Buffer.from([0, 0x10, 0, 0])), // no conn-level stall
      RawClient.call(1, unaryPath, encodeRequest({ namespace: 'fast', count: 1 })),
    );
    if (settings.length === 0) await c.until('the first answer', ended(1));
    return c;
  }

  const rss = (pid: number): number => {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m?.[1] ?? 0) * 1024;
  };

  it('a flood of empty CONTINUATION frames ends the connection (the 2024 CONTINUATION flood)', async () => {
    const c = await fastClient();
    const before = rss(server.proc.pid as number);
    try {
      const block = Buffer.concat([
        encodeLiteralField(':method', 'POST'),
        encodeLiteralField(':path', unaryPath),
      ]);
      c.send(frame(frameType.headers, 0, 3, block)); // no END_HEADERS
      const empty = frame(frameType.continuation, 0, 3);
      const batch = Buffer.concat(Array.from({ length: 10_000 }, () => empty));
      // 3M frames, 27 MB on the wire; nothing in them counts against the header list size.
      for (let i = 0; i < 300 && !c.closed; i++) {
        c.send(batch);
        if (i % 20 === 19) await sleep(10);
      }
      await c.until('GOAWAY', (fs) => fs.some((f) => f.type === frameType.goaway));
      const goaway = c.frames.find((f) => f.type === frameType.goaway) as Received;
      expect(goaway.payload.readUInt32BE(4)).not.toBe(errorCode.noError);
    } finally {
      c.close();
      console.log(
        `review: server RSS ${before >> 20} MB -> ${rss(server.proc.pid as number) >> 20} MB`,
      );
    }
  });

  it('answers held by a closed window count as open calls: no more than 10000 on one connection', async () => {
    // The client's windows are 0: every answer waits, yet every call is allocated.
    const c = await fastClient([[setting.initialWindowSize, 0]]);
    try {
      const message = encodeRequest({ namespace: 'held', count: 1 });
      const total = 10_500;
      for (let id = 3; id < 3 + 2 * total; id += 2 * 500) {
        const calls = [];
        for (let k = id; k < Math.min(id + 2 * 500, 3 + 2 * total); k += 2) {
          calls.push(RawClient.call(k, unaryPath, message));
        }
        c.send(...calls);
        await sleep(5);
      }
      const last = 1 + 2 * total;
      await c
        .until('the last call answered or refused', (fs) => fs.some((f) => f.streamId === last))
        .catch(() => undefined);
      const refused = c.frames.filter(
        (f) => f.type === frameType.headers && f.fields?.get('grpc-status') === '8',
      ).length;
      const probe = counterClient(server.target);
      let allocated: number;
      try {
        allocated = Number((await allocate(probe, 'held', 1)).first) - 1;
      } finally {
        probe.close();
      }
      // streamsOpenMax (10000) is the bound: the rest are refused (RESOURCE_EXHAUSTED) and
      // not allocated.
      expect({
        allocatedAtMost10001: allocated <= 10_001,
        refusedAtLeast499: refused >= 499,
      }).toEqual({
        allocatedAtMost10001: true,
        refusedAtLeast499: true,
      });
    } finally {
      c.close();
    }
  });

  it('a unary answer larger than the stream window is sent in pieces as the window opens', async () => {
    const session = http2.connect(`http://${server.target}`, {
      settings: { initialWindowSize: 8 },
    });
    session.on('error', () => undefined);
    try {
      const status = await Promise.race([
        h2call(session, unaryPath, encodeRequest({ namespace: 'tiny-window', count: 1 })),
        sleep(5000).then(() => 'no answer in 5 s'),
      ]);
      expect(status).toBe('0');
    } finally {
      session.destroy();
    }
  });

  it('a client that never ACKs our SETTINGS cannot make the node buffer without bound while it sniffs', async () => {
    const c = await RawClient.connect(server.target);
    const before = rss(server.proc.pid as number);
    let sent = 0;
    try {
      c.send(connectionPreface, RawClient.settings()); // and never the ACK, nor a request
      // Frames of an unknown type (to be ignored, RFC 9113 §5.5), 16 KiB each.
      const filler = frame(0xfa, 0, 0, Buffer.alloc(16_000));
      const batch = Buffer.concat(Array.from({ length: 64 }, () => filler)); // ~1 MB
      const socket = (c as unknown as { socket: net.Socket }).socket;
      let grown = 0;
      for (let i = 0; i < 256 && !c.closed; i++) {
        if (!socket.write(batch)) {
          await new Promise<void>((resolve) => {
            socket.once('drain', resolve);
            socket.once('close', resolve);
          });
        }
        sent += batch.length;
        grown = Math.max(grown, rss(server.proc.pid as number) - before);
      }
      console.log(`review: sent ${sent >> 20} MB, closed ${c.closed}, RSS +${grown >> 20} MB`);
      expect({ closed: c.closed, grownUnder64MB: grown < 64 << 20 }).toEqual({
        closed: true,
        grownUnder64MB: true,
      });
    } finally {
      c.close();
    }
  });
});

describe('the gRPC port: review (frame variants)', () => {
  let server: Server;

  beforeAll(async () => {
    server = await startServe(path.join(await tempDir(), 'data'));
  });

  /** HEADERS with PADDED and PRIORITY, CONTINUATION, then padded DATA in two frames. */
  function oddCall(streamId: number, message: Buffer): Buffer {
    const block = Buffer.concat([
      encodeLiteralField(':method', 'POST'),
      encodeLiteralField(':scheme', 'http'),
      encodeLiteralField(':path', unaryPath),
      encodeLiteralField(':authority', 'tally'),
      encodeLiteralField('content-type', 'application/grpc'),
      encodeLiteralField('te', 'trailers'),
    ]);
    const cut = 10;
    const pad = 7;
    const headersPayload = Buffer.concat([
      Buffer.from([pad]),
      Buffer.from([0, 0, 0, 0, 15]), // PRIORITY: no dependency, weight 16
      block.subarray(0, cut),
      Buffer.alloc(pad),
    ]);
    const body = grpcMessage(message);
    const half = body.length >> 1;
    const padded = (part: Buffer) => Buffer.concat([Buffer.from([3]), part, Buffer.alloc(3)]);
    return Buffer.concat([
      frame(frameType.headers, flag.padded | flag.priority, streamId, headersPayload),
      frame(frameType.continuation, 0, streamId, block.subarray(cut, cut + 5)),
      frame(frameType.continuation, flag.endHeaders, streamId, block.subarray(cut + 5)),
      frame(frameType.priority, 0, streamId, Buffer.from([0, 0, 0, 0, 15])),
      frame(frameType.data, flag.padded, streamId, padded(body.subarray(0, half))),
      frame(frameType.data, flag.padded | flag.endStream, streamId, padded(body.subarray(half))),
    ]);
  }

  it('padding, PRIORITY, CONTINUATION and a request in two DATA frames: on the first call (sniffed) and later', async () => {
    const c = await RawClient.connect(server.target);
    try {
      const m = encodeRequest({ namespace: 'odd', count: 2 });
      c.send(connectionPreface, RawClient.settings(), oddCall(1, m));
      await c.until('answer 1', ended(1));
      c.send(frame(frameType.settings, flag.ack, 0), oddCall(3, m));
      await c.until('answer 3', ended(3));
      expect([RawClient.grpcStatus(c.frames, 1), RawClient.grpcStatus(c.frames, 3)]).toEqual([
        '0',
        '0',
      ]);
      const firsts = c.frames
        .filter((f) => f.type === frameType.data)
        .map((f) => decodeResponse(f.payload.subarray(5)).first);
      expect(firsts).toEqual(['1', '3']);
      expect(c.frames.some((f) => f.type === frameType.goaway)).toBe(false);
    } finally {
      c.close();
    }
  });

  it('AllocateStream: a compressed message ends the call (as on grpc-js), though the client has not half-closed', async () => {
    for (const servedBy of ['frame', 'grpc-js']) {
      const c = await RawClient.connect(server.target);
      try {
        c.send(connectionPreface, RawClient.settings(), frame(frameType.settings, flag.ack, 0));
        let id = 1;
        if (servedBy === 'grpc-js') {
          c.send(RawClient.call(1, statusPath, Buffer.alloc(0))); // this connection: grpc-js
          await c.until('the Status answer', ended(1));
          id = 3;
        }
        const compressed = Buffer.concat([
          Buffer.from([1, 0, 0, 0, 3]), // compressed flag, 3 bytes
          Buffer.from([1, 2, 3]),
        ]);
        c.send(
          frame(
            frameType.headers,
            flag.endHeaders,
            id,
            Buffer.concat([
              encodeLiteralField(':method', 'POST'),
              encodeLiteralField(':scheme', 'http'),
              encodeLiteralField(':path', '/tally.v1.Counter/AllocateStream'),
              encodeLiteralField(':authority', 'tally'),
              encodeLiteralField('content-type', 'application/grpc'),
              encodeLiteralField('te', 'trailers'),
            ]),
          ),
          frame(frameType.data, 0, id, compressed), // and no END_STREAM
        );
        await c.until(`the end of the call (${servedBy})`, ended(id));
        expect(RawClient.grpcStatus(c.frames, id), servedBy).toBe(
          String(counterErrors.compressed.code),
        );
      } finally {
        c.close();
      }
    }
  });

  it('AllocateStream: answers held by SETTINGS_INITIAL_WINDOW_SIZE 0 go out when the client raises it, then the trailers', async () => {
    const c = await RawClient.connect(server.target);
    try {
      const requests = Buffer.concat(
        [1, 2, 3].map((i) =>
          grpcMessage(
            encodeRequest({ namespace: 'win-stream', count: 1, correlationId: String(i) }),
          ),
        ),
      );
      c.send(
        connectionPreface,
        RawClient.settings([[setting.initialWindowSize, 0]]),
        frame(
          frameType.headers,
          flag.endHeaders,
          1,
          Buffer.concat([
            encodeLiteralField(':method', 'POST'),
            encodeLiteralField(':scheme', 'http'),
            encodeLiteralField(':path', '/tally.v1.Counter/AllocateStream'),
            encodeLiteralField(':authority', 'tally'),
            encodeLiteralField('content-type', 'application/grpc'),
            encodeLiteralField('te', 'trailers'),
          ]),
        ),
        frame(frameType.data, flag.endStream, 1, requests),
      );
      await until('the three allocated', async () =>
        (await lastIdOf(server.target, 'win-stream')) === 3 ? true : null,
      );
      expect(c.frames.some((f) => f.type === frameType.data)).toBe(false);
      c.send(RawClient.settings([[setting.initialWindowSize, 10]])); // pieces of 10 bytes
      await c.until('10 bytes', (fs) => fs.some((f) => f.type === frameType.data));
      c.send(RawClient.settings([[setting.initialWindowSize, 100_000]]));
      await c.until('the trailers', ended(1));
      expect(RawClient.grpcStatus(c.frames, 1)).toBe('0');
      const body = Buffer.concat(
        c.frames.filter((f) => f.type === frameType.data).map((f) => f.payload),
      );
      const ids = [];
      for (let at = 0; at < body.length; at += 5 + body.readUInt32BE(at + 1)) {
        ids.push(
          decodeResponse(body.subarray(at + 5, at + 5 + body.readUInt32BE(at + 1))).correlationId,
        );
      }
      expect(ids.sort()).toEqual(['1', '2', '3']);
    } finally {
      c.close();
    }
  });

  it('sniffing: a preface in pieces, PING and WINDOW_UPDATE before HEADERS, the ACK after them, on both paths', async () => {
    for (const [callPath, message] of [
      [statusPath, Buffer.alloc(0)],
      [unaryPath, encodeRequest({ namespace: 'pieces', count: 1 })],
    ] as const) {
      const c = await RawClient.connect(server.target);
      try {
        for (const piece of [connectionPreface.subarray(0, 3), connectionPreface.subarray(3, 20)]) {
          c.send(piece);
          await sleep(20);
        }
        c.send(connectionPreface.subarray(20), RawClient.settings());
        c.send(frame(frameType.ping, 0, 0, Buffer.from('12345678')), windowUpdateFrame(0, 1000));
        await sleep(20);
        const call = RawClient.call(1, callPath, message);
        c.send(call.subarray(0, 7));
        await sleep(20);
        c.send(call.subarray(7));
        await sleep(20);
        c.send(frame(frameType.settings, flag.ack, 0));
        await c.until(`the answer on ${callPath}`, ended(1));
        expect(RawClient.grpcStatus(c.frames, 1), callPath).toBe('0');
        const pong = c.frames.find((f) => f.type === frameType.ping && f.flags & flag.ack);
        expect(pong?.payload.toString(), callPath).toBe('12345678');
        const goaway = c.frames.find((f) => f.type === frameType.goaway);
        expect(goaway?.payload.readUInt32BE(4) ?? 0, callPath).toBe(errorCode.noError);
      } finally {
        c.close();
      }
    }
  });

  it('a new request on a stream id already used (ids going backwards) is a connection error, not a call left hanging', async () => {
    const c = await RawClient.connect(server.target);
    try {
      const m = encodeRequest({ namespace: 'backwards', count: 1 });
      c.send(connectionPreface, RawClient.settings(), RawClient.call(3, unaryPath, m));
      await c.until('answer 3', ended(3));
      c.send(RawClient.call(1, unaryPath, m)); // RFC 9113 5.1.1: PROTOCOL_ERROR
      await c.until('GOAWAY or an answer on 1', (fs) =>
        fs.some((f) => f.type === frameType.goaway || (f.streamId === 1 && ended(1)(fs))),
      );
      const goaway = c.frames.find((f) => f.type === frameType.goaway);
      expect(goaway?.payload.readUInt32BE(4)).toBe(errorCode.protocol);
    } finally {
      c.close();
    }
  });
});

describe('the gRPC port: review (shutdown)', () => {
  it('SIGTERM while a client reads its answers slowly: every durable allocation is answered', async () => {
    const dataDir = path.join(await tempDir(), 'data');
    const server = await startServe(dataDir);
    const c = await RawClient.connect(server.target);
    const socket = (c as unknown as { socket: net.Socket }).socket;
    socket.pause(); // the client reads nothing for now: the node's answers pile up
    const big = 2 ** 31 - 1;
    c.send(
      connectionPreface,
      RawClient.settings([[setting.initialWindowSize, big]]),
      frame(frameType.settings, flag.ack, 0),
      windowUpdateFrame(0, big - 65_535),
      frame(
        frameType.headers,
        flag.endHeaders,
        1,
        Buffer.concat([
          encodeLiteralField(':method', 'POST'),
          encodeLiteralField(':scheme', 'http'),
          encodeLiteralField(':path', '/tally.v1.Counter/AllocateStream'),
          encodeLiteralField(':authority', 'tally'),
          encodeLiteralField('content-type', 'application/grpc'),
          encodeLiteralField('te', 'trailers'),
        ]),
      ),
    );
    const perFrame = 700;
    const requests = Buffer.concat(
      Array.from({ length: perFrame }, (_, i) =>
        grpcMessage(
          encodeRequest({ namespace: 's', count: 1, correlationId: String(2 ** 50 + i) }),
        ),
      ),
    );
    const data = frame(frameType.data, 0, 1, requests);
    for (let i = 0; i < 600; i++) c.send(data); // 420K requests; the node reads what it can
    const allocated = async (): Promise<number> => {
      const { body } = await fetchText(`http://127.0.0.1:${server.metricsPort}/metrics`);
      return Number(/^tally_ids_allocated_total (\d+)/m.exec(body)?.[1] ?? 0);
    };
    // Until the node stops taking requests (its writes to this client are blocked).
    let last = -1;
    for (let now = await allocated(); now !== last; now = await allocated()) {
      last = now;
      await sleep(500);
    }
    server.proc.kill('SIGTERM');
    await sleep(2500); // the client is slow: it reads again only now
    socket.resume();
    await new Promise<void>((resolve) => {
      if (c.closed) resolve();
      else socket.once('close', () => resolve());
    });
    expect((await server.exited).code).toBe(0);
    const body = Buffer.concat(
      c.frames.filter((f) => f.type === frameType.data && f.streamId === 1).map((f) => f.payload),
    );
    let answered = 0;
    let cut = false;
    for (let at = 0; at + 5 <= body.length; at += 5 + body.readUInt32BE(at + 1)) {
      if (at + 5 + body.readUInt32BE(at + 1) > body.length) {
        cut = true; // the connection ended inside a message
        break;
      }
      const res = decodeResponse(body.subarray(at + 5, at + 5 + body.readUInt32BE(at + 1)));
      if (res.error === null) answered++;
    }
    const again = await startServe(dataDir);
    const lastId = await lastIdOf(again.target, 's');
    console.log();
    const ended = c.frames.some((f) => f.streamId === 1 && f.flags & flag.endStream);
    console.log(`review: allocated ${lastId}, answered ${answered}, cut ${cut}, ended ${ended}`);
    expect({ answered, cut, ended }).toEqual({ answered: lastId, cut: false, ended: true });
  });
});
