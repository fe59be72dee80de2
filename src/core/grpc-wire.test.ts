/**
 * The hand-written gRPC/protobuf codec of the Counter hot path, checked against protobufjs
 * (the serializers proto-loader builds from proto/tally/v1/counter.proto).
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../testing/random';
import {
  type AllocateResponseView,
  allocateRequestFrameMax,
  decodeAllocateRequest,
  decodeAllocateResponse,
  encodeResponseFrames,
  frameHeaderBytes,
  FrameReader,
  parseGrpcTimeoutMs,
  type ResponseFields,
  writeAllocateRequestFrame,
} from './grpc-wire';
import {
  decodeAllocateRequestWithProtobufjs,
  decodeAllocateResponse as deserializeResponse,
  encodeAllocateRequest as serializeRequest,
  encodeAllocateResponse as serializeResponse,
} from '../testing/counter-codec';

function decode(bytes: Buffer | number[]): ReturnType<typeof decodeAllocateRequest> {
  const buf = Buffer.from(bytes);
  return decodeAllocateRequest(buf, 0, buf.length);
}

/** The correlation id's raw varint bytes as a decimal string (what a client reads back). */
function varintValue(bytes: Buffer | null): string {
  if (bytes === null) return '0';
  let value = 0n;
  bytes.forEach((b, i) => (value |= BigInt(b & 0x7f) << BigInt(7 * i)));
  return value.toString();
}

function frame(body: Buffer, flag = 0): Buffer {
  const header = Buffer.alloc(frameHeaderBytes);
  header[0] = flag;
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

describe('decodeAllocateRequest', () => {
  it('reads what protobufjs writes, for random requests (uint64 correlation ids included)', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 500; i++) {
      const namespace = 'ns-' + Math.floor(random() * 1e6).toString(36);
      const count = Math.floor(random() * 2 ** 32);
      const correlationId = BigInt(Math.floor(random() * 2 ** 32)) << BigInt(i % 33);
      const bytes = serializeRequest({
        namespace,
        count,
        correlationId: correlationId.toString(),
      });
      const req = decode(bytes);
      expect(req).not.toBeNull();
      expect(req?.namespace).toBe(namespace);
      expect(req?.count).toBe(count);
      expect(varintValue(req?.correlationId ?? null)).toBe(correlationId.toString());
    }
  });

  it('takes proto3 defaults for missing fields and the last of repeated ones', () => {
    expect(decode([])).toEqual({ namespace: '', count: 0, correlationId: null });
    // count = 5 then count = 7: the last wins.
    expect(decode([0x10, 5, 0x10, 7])?.count).toBe(7);
  });

  it('keeps only the low 32 bits of an oversized count, as protobufjs does for uint32', () => {
    // 2^32 + 3 as a varint.
    const bytes = [0x10, 0x83, 0x80, 0x80, 0x80, 0x10];
    expect(decode(bytes)?.count).toBe(3);
    expect(decodeAllocateRequestWithProtobufjs(Buffer.from(bytes)).count).toBe(3);
  });

  it('skips unknown fields of every wire type', () => {
    const known = [0x0a, 2, 0x61, 0x62, 0x10, 4];
    const unknown = [
      [0x20, 0xff, 0x01], // field 4 varint
      [0x29, 1, 2, 3, 4, 5, 6, 7, 8], // field 5 fixed64
      [0x32, 3, 9, 9, 9], // field 6 bytes
      [0x3d, 1, 2, 3, 4], // field 7 fixed32
      [0xf8, 0x07, 1], // field 127 varint (two-byte tag)
    ];
    for (const extra of unknown) {
      expect(decode([...extra, ...known, ...extra])).toEqual({
        namespace: 'ab',
        count: 4,
        correlationId: null,
      });
    }
  });

  it('refuses bytes that are not a valid AllocateRequest', () => {
    const invalid: Record<string, number[]> = {
      'truncated varint': [0x10, 0x80],
      'varint longer than 10 bytes': [0x10, ...Array<number>(10).fill(0x80), 1],
      'length past the end': [0x0a, 5, 0x61],
      'namespace as a varint': [0x08, 1],
      'count as bytes': [0x12, 1, 0],
      'correlation id as fixed64': [0x19, 1, 2, 3, 4, 5, 6, 7, 8],
      'field number 0': [0x00, 1],
      'group wire type': [0x23, 0x24],
      'wire type 7': [0x27, 1],
      'fixed32 past the end': [0x3d, 1, 2],
      'correlation id above 64 bits': [0x18, ...Array<number>(9).fill(0xff), 0x02],
    };
    for (const [why, bytes] of Object.entries(invalid)) {
      expect(decode(bytes), why).toBeNull();
    }
  });
});

describe('encodeResponseFrames', () => {
  const success: ResponseFields = {
    first: 2 ** 53 - 1,
    count: 10_000,
    epoch: 3,
    index: 123_456_789_012,
    correlationId: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
    error: null,
  };
  const failure: ResponseFields = {
    first: 0,
    count: 0,
    epoch: 0,
    index: 0,
    correlationId: Buffer.from([0x2a]),
    error: {
      code: 9,
      message: 'node: this node is a standby — ask the primary',
      primaryAddress: '127.0.0.1:7400',
    },
  };

  it('frames responses that protobufjs decodes to the same fields', () => {
    const bytes = encodeResponseFrames([success, failure, { ...success, correlationId: null }]);
    const bodies: Buffer[] = [];
    new FrameReader(1 << 20, {
      message: (buf, start, end) => bodies.push(Buffer.from(buf.subarray(start, end))),
      oversized: () => expect.fail('oversized'),
      compressed: () => expect.fail('compressed'),
    }).push(bytes);
    expect(bodies).toHaveLength(3);
    const [a, b, c] = bodies.map((body) => deserializeResponse(body));
    expect(a).toMatchObject({
      first: String(2 ** 53 - 1),
      count: 10_000,
      correlationId: '18446744073709551615',
      epoch: '3',
      index: '123456789012',
      error: null,
    });
    expect(b).toMatchObject({ first: '0', correlationId: '42', error: failure.error });
    expect(c?.correlationId).toBe('0');
  });
});

describe('FrameReader', () => {
  function collect(maxBytes: number, chunks: Buffer[]) {
    const events: string[] = [];
    const reader = new FrameReader(maxBytes, {
      message: (buf, start, end) => events.push(buf.toString('latin1', start, end)),
      oversized: (length) => events.push(`oversized:${length}`),
      compressed: () => events.push('compressed'),
    });
    for (const chunk of chunks) reader.push(chunk);
    return { events, atBoundary: reader.atBoundary };
  }

  it('yields the same messages however the bytes are cut into chunks', () => {
    const messages = ['a', '', 'hello world', 'x'.repeat(300)];
    const stream = Buffer.concat(messages.map((m) => frame(Buffer.from(m))));
    const random = seededRandom(11);
    for (let trial = 0; trial < 200; trial++) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < stream.length;) {
        const n = 1 + Math.floor(random() * (trial % 2 === 0 ? 4 : 64));
        chunks.push(stream.subarray(at, at + n));
        at += n;
      }
      expect(collect(1024, chunks)).toEqual({ events: messages, atBoundary: true });
    }
  });

  it('skips an oversized message without buffering it and reads on after it', () => {
    const big = frame(Buffer.alloc(5000, 0x41));
    const stream = Buffer.concat([frame(Buffer.from('before')), big, frame(Buffer.from('after'))]);
    const chunks = [stream.subarray(0, 20), stream.subarray(20, 3000), stream.subarray(3000)];
    expect(collect(1024, chunks).events).toEqual(['before', 'oversized:5000', 'after']);
  });

  it('reports a compressed message and a stream cut inside a message', () => {
    expect(collect(1024, [frame(Buffer.from('z'), 1)]).events).toEqual(['compressed']);
    const cut = collect(1024, [frame(Buffer.from('abc')).subarray(0, 6)]);
    expect(cut).toEqual({ events: [], atBoundary: false });
    expect(collect(1024, [Buffer.from([0, 0])]).atBoundary).toBe(false);
  });
});

describe('writeAllocateRequestFrame (the client side)', () => {
  it('writes back to back the frames protobufjs would, uint64 correlation ids included', () => {
    const ns = Buffer.from('bench-ü', 'utf8');
    const ids = [1, 127, 128, 300, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, 2 ** 53 - 1];
    const buf = Buffer.alloc(ids.length * allocateRequestFrameMax(ns.length));
    let at = 0;
    for (const [i, id] of ids.entries()) {
      const start = at;
      at = writeAllocateRequestFrame(buf, at, ns, i === 0 ? 10_000 : 1, id);
      const body = buf.subarray(start + frameHeaderBytes, at);
      expect(buf[start]).toBe(0);
      expect(buf.readUInt32BE(start + 1)).toBe(body.length);
      const want = serializeRequest({
        namespace: 'bench-ü',
        count: i === 0 ? 10_000 : 1,
        correlationId: String(id),
      });
      expect(body.equals(want)).toBe(true);
      // And the server's decoder reads it back.
      expect(decodeAllocateRequest(buf, start + frameHeaderBytes, at)?.namespace).toBe('bench-ü');
    }
  });
});

describe('decodeAllocateResponse (the client side)', () => {
  const view = (): AllocateResponseView => ({
    first: -1,
    count: -1,
    correlationId: -1,
    epoch: -1,
    index: -1,
    error: null,
  });
  const decodeResponse = (bytes: Buffer | number[]): AllocateResponseView | null => {
    const buf = Buffer.from(bytes);
    const out = view();
    return decodeAllocateResponse(buf, 0, buf.length, out) ? out : null;
  };

  it('reads what protobufjs writes: successes, errors (negative codes too) and empty', () => {
    const cases: Array<[object, Partial<AllocateResponseView>]> = [
      [
        { first: '1', count: 1, correlationId: '1', epoch: '1', index: '1' },
        { first: 1, count: 1, correlationId: 1, epoch: 1, index: 1, error: null },
      ],
      [
        {
          first: String(2 ** 53 - 100),
          count: 100,
          correlationId: String(2 ** 32 + 1),
          epoch: '3',
          index: String(2 ** 40),
        },
        { first: 2 ** 53 - 100, count: 100, correlationId: 2 ** 32 + 1, index: 2 ** 40 },
      ],
      [
        {
          correlationId: String(2 ** 53 - 1),
          error: { code: 8, message: 'overloaded: ü', primaryAddress: '' },
        },
        {
          first: 0,
          correlationId: 2 ** 53 - 1,
          error: { code: 8, message: 'overloaded: ü', primaryAddress: '' },
        },
      ],
      [
        {
          correlationId: '7',
          error: { code: 9, message: 'standby', primaryAddress: '10.0.0.1:1' },
        },
        { correlationId: 7, error: { code: 9, message: 'standby', primaryAddress: '10.0.0.1:1' } },
      ],
      [
        { correlationId: '8', error: { code: -1, message: '' } },
        { correlationId: 8, error: { code: -1, message: '', primaryAddress: '' } },
      ],
      [{}, { first: 0, count: 0, correlationId: 0, epoch: 0, index: 0, error: null }],
    ];
    for (const [message, want] of cases) {
      expect(decodeResponse(serializeResponse(message))).toMatchObject(want);
    }
  });

  it("reads the server's own frames back", () => {
    const framed = encodeResponseFrames([
      { first: 42, count: 3, epoch: 2, index: 9, correlationId: Buffer.from([5]), error: null },
    ]);
    const out = view();
    expect(decodeAllocateResponse(framed, frameHeaderBytes, framed.length, out)).toBe(true);
    expect(out).toEqual({ first: 42, count: 3, correlationId: 5, epoch: 2, index: 9, error: null });
  });

  it('skips unknown fields of every wire type, also inside the error', () => {
    const unknown = Buffer.from(
      [
        '38ffffffffffffffffff01', // field 7, varint (10 bytes)
        '410102030405060708', // field 8, fixed64
        '4a03616263', // field 9, length-delimited "abc"
        '5501020304', // field 10, fixed32
        'c03e05', // field 1000, varint (two-byte key)
      ].join(''),
      'hex',
    );
    const success = serializeResponse({ first: '9', count: 2, correlationId: '4' });
    expect(decodeResponse(Buffer.concat([unknown, success, unknown]))).toMatchObject({
      first: 9,
      count: 2,
      correlationId: 4,
      error: null,
    });
    const error = Buffer.concat([Buffer.from([0x22, 1, 0x78, 0x08, 14]), unknown]);
    const withError = Buffer.concat([Buffer.from([0x18, 5, 0x32, error.length]), error]);
    expect(decodeResponse(withError)?.error).toEqual({
      code: 14,
      message: '',
      primaryAddress: '',
    });
  });

  it('forgets the previous response when a view is reused', () => {
    const out = view();
    const bytes = serializeResponse({ correlationId: '3', error: { code: 9, message: 'x' } });
    expect(decodeAllocateResponse(bytes, 0, bytes.length, out)).toBe(true);
    const ok = serializeResponse({ first: '1', count: 1, correlationId: '4' });
    expect(decodeAllocateResponse(ok, 0, ok.length, out)).toBe(true);
    expect(out.error).toBeNull();
    expect(out.correlationId).toBe(4);
  });

  it('refuses bytes that are not an AllocateResponse', () => {
    for (const hex of [
      '1880', // cut-off varint
      '4a0501', // length past the end
      '1a00', // correlation_id with the wrong wire type
      '0a0100', // first with the wrong wire type
      '3008', // error with the wrong wire type
      '0b', // group wire type
      '0001', // field number 0
      '32021203', // the error's message past its end
      '3205120178', // the error past the end
      '08ffffffffffffffffffff01', // varint longer than 10 bytes
    ]) {
      expect(decodeResponse(Buffer.from(hex, 'hex')), hex).toBeNull();
    }
  });
});

describe('parseGrpcTimeoutMs', () => {
  it('reads every unit and refuses anything else', () => {
    expect(parseGrpcTimeoutMs('2H')).toBe(7_200_000);
    expect(parseGrpcTimeoutMs('3M')).toBe(180_000);
    expect(parseGrpcTimeoutMs('5S')).toBe(5000);
    expect(parseGrpcTimeoutMs('250m')).toBe(250);
    expect(parseGrpcTimeoutMs('1500u')).toBe(1.5);
    expect(parseGrpcTimeoutMs('99999999n')).toBeCloseTo(99.999999);
    for (const bad of ['', '5', 'S', '5s', '-1S', '123456789S', '1.5S', '5 S']) {
      expect(parseGrpcTimeoutMs(bad), bad).toBeNull();
    }
  });
});
