/**
 * The HPACK decoder against RFC 7541's own examples, and against what Node's http2 client
 * (nghttp2's encoder: Huffman strings, the dynamic table) really sends.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../testing/random';
import { connectionPreface, frameHeaderLength, frameType } from './frames';
import {
  encodeLiteralField,
  type HeaderFields,
  HpackDecoder,
  HpackError,
  huffmanDecode,
} from './hpack';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decodeAll(decoder: HpackDecoder, block: Buffer): HeaderFields {
  const out: HeaderFields = new Map();
  decoder.decode(block, 0, block.length, out, 1 << 20);
  return out;
}

describe('huffmanDecode', () => {
  it('decodes the strings of RFC 7541 C.4 and C.6', () => {
    const cases: Array<[string, string]> = [
      ['f1e3 c2e5 f23a 6ba0 ab90 f4ff', 'www.example.com'],
      ['a8eb 1064 9cbf', 'no-cache'],
      ['25a8 49e9 5ba9 7d7f', 'custom-key'],
      ['25a8 49e9 5bb8 e8b4 bf', 'custom-value'],
      ['6402', '302'],
      ['aec3 771a 4b', 'private'],
      ['9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3', 'https://www.example.com'],
    ];
    for (const [code, text] of cases) {
      const buf = hex(code);
      expect(huffmanDecode(buf, 0, buf.length)).toBe(text);
    }
  });

  it('refuses padding that is not the EOS prefix, or longer than 7 bits', () => {
    // 'a' is 00011 (5 bits): 0x18 pads with zeros; 0xff 0xff is 16 bits of padding.
    expect(() => huffmanDecode(hex('18'), 0, 1)).toThrow(HpackError);
    expect(() => huffmanDecode(hex('1fff'), 0, 2)).toThrow(HpackError);
    expect(huffmanDecode(hex('1f'), 0, 1)).toBe('a');
  });
});

describe('HpackDecoder', () => {
  it('decodes the request sequence of RFC 7541 C.4 (Huffman, dynamic table)', () => {
    const d = new HpackDecoder();
    expect(
      Object.fromEntries(decodeAll(d, hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))),
    ).toEqual({
      ':method': 'GET',
      ':scheme': 'http',
      ':path': '/',
      ':authority': 'www.example.com',
    });
    expect(Object.fromEntries(decodeAll(d, hex('8286 84be 5886 a8eb 1064 9cbf')))).toEqual({
      ':method': 'GET',
      ':scheme': 'http',
      ':path': '/',
      ':authority': 'www.example.com',
      'cache-control': 'no-cache',
    });
    expect(
      Object.fromEntries(
        decodeAll(d, hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')),
      ),
    ).toEqual({
      ':method': 'GET',
      ':scheme': 'https',
      ':path': '/index.html',
      ':authority': 'www.example.com',
      'custom-key': 'custom-value',
    });
  });

  it('reads back our own literal fields', () => {
    const block = Buffer.concat([
      encodeLiteralField('content-type', 'application/grpc'),
      encodeLiteralField('grpc-message', 'x'.repeat(300)),
      encodeLiteralField('tally-primary', '10.0.0.1:7400'),
    ]);
    expect(Object.fromEntries(decodeAll(new HpackDecoder(), block))).toEqual({
      'content-type': 'application/grpc',
      'grpc-message': 'x'.repeat(300),
      'tally-primary': '10.0.0.1:7400',
    });
  });

  it('refuses bad blocks: index 0, an index past the tables, a cut string, a too-large list', () => {
    const bad = ['80', 'ff00', '0f1f05616263', '4085'];
    for (const b of bad) expect(() => decodeAll(new HpackDecoder(), hex(b)), b).toThrow(HpackError);
    const big = encodeLiteralField('x-big', 'y'.repeat(2000));
    expect(() => new HpackDecoder().decode(big, 0, big.length, new Map(), 1000)).toThrow(
      /too large/,
    );
  });

  it("decodes what Node's http2 client sends, request after request, for random headers", async () => {
    const random = seededRandom(12);
    const printable = (n: number): string =>
      Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(random() * 95)))
        .join('')
        .trim() || 'v';
    const sent: Array<Record<string, string>> = [];
    for (let i = 0; i < 60; i++) {
      const h: Record<string, string> = {
        ':method': 'POST',
        ':path': i % 3 === 0 ? '/tally.v1.Counter/Allocate' : `/p/${printable(8)}`,
        'content-type': 'application/grpc',
        'x-repeat': 'same-value-every-time',
      };
      h[`x-k${i % 7}`] = printable(1 + Math.floor(random() * 40));
      sent.push(h);
    }
    const blocks: Buffer[] = [];
    let input = Buffer.alloc(0);
    const server = net.createServer((socket) => {
      socket.on('data', (chunk: Buffer) => {
        input = Buffer.concat([input, chunk]);
        let at = input.subarray(0, connectionPreface.length).equals(connectionPreface)
          ? connectionPreface.length
          : 0;
        const seen: Buffer[] = [];
        while (input.length - at >= frameHeaderLength) {
          const length = input.readUIntBE(at, 3);
          if (input.length - at < frameHeaderLength + length) break;
          if (input[at + 3] === frameType.headers) {
            seen.push(input.subarray(at + frameHeaderLength, at + frameHeaderLength + length));
          }
          at += frameHeaderLength + length;
        }
        blocks.splice(0, blocks.length, ...seen);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on('error', () => undefined);
    try {
      for (const h of sent) client.request(h, { endStream: true }).on('error', () => undefined);
      const deadline = Date.now() + 10_000;
      while (blocks.length < sent.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(blocks.length).toBe(sent.length);
      const d = new HpackDecoder();
      blocks.forEach((block, i) => {
        const got = decodeAll(d, block);
        for (const [k, v] of Object.entries(sent[i] as Record<string, string>)) {
          expect(got.get(k), `request ${i} header ${k}`).toBe(v);
        }
      });
    } finally {
      client.destroy();
      server.close();
    }
  });
});
