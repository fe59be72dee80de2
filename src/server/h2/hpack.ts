/**
 * HPACK (RFC 7541) for the frame-level Counter server: a full decoder (static and dynamic
 * table, integers, Huffman strings) and the encoder pieces our fixed responses need (literal
 * fields without indexing, never Huffman: the responses are precomputed or short).
 *
 * The Huffman code is canonical (RFC 7541 Appendix B): codes of one length are consecutive in
 * symbol order, and lengths never decrease, so the code table follows from each symbol's
 * length alone (huffmanLengths, symbols 0..255 and EOS = 256).
 */

/** RFC 7541 Appendix A. Index 1..61. */
export const staticTable: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** Code length in bits of each symbol 0..255 and EOS (256), RFC 7541 Appendix B. */
const huffmanLengths = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
  28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5,
  6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6,
  7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23,
  23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22,
  22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22,
  23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27,
  27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25,
  24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

/**
 * The decoding tree as flat arrays: node n's children are child[2n] (bit 0) and child[2n+1]
 * (bit 1); a child ≥ 0 is another node, a child < 0 is the leaf of symbol -child-1.
 */
const huffmanTree = ((): Int32Array => {
  const symbols = huffmanLengths.map((_, s) => s);
  symbols.sort((a, b) => (huffmanLengths[a] as number) - (huffmanLengths[b] as number) || a - b);
  const child = new Int32Array(2 * 512).fill(0);
  let nodes = 1;
  let code = 0;
  let prevLength = huffmanLengths[symbols[0] as number] as number;
  for (const [i, s] of symbols.entries()) {
    const length = huffmanLengths[s] as number;
    if (i > 0) code = (code + 1) * 2 ** (length - prevLength);
    prevLength = length;
    let node = 0;
    for (let bit = length - 1; bit >= 0; bit--) {
      const b = Math.floor(code / 2 ** bit) % 2;
      const slot = 2 * node + b;
      if (bit === 0) child[slot] = -s - 1;
      else {
        if (child[slot] === 0) child[slot] = nodes++;
        node = child[slot] as number;
      }
    }
  }
  return child;
})();

export class HpackError extends Error {}

/** Decodes a Huffman-coded string; throws HpackError on EOS, a bad padding or a cut code. */
export function huffmanDecode(buf: Buffer, start: number, end: number): string {
  const out: number[] = [];
  let node = 0;
  let depth = 0; // bits since the last symbol
  let allOnes = true;
  for (let i = start; i < end; i++) {
    const byte = buf[i] as number;
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >> bit) & 1;
      const next = huffmanTree[2 * node + b] as number;
      depth++;
      allOnes &&= b === 1;
      if (next < 0) {
        const symbol = -next - 1;
        if (symbol === 256) throw new HpackError('hpack: EOS in a Huffman string');
        out.push(symbol);
        node = 0;
        depth = 0;
        allOnes = true;
      } else if (next === 0) {
        throw new HpackError('hpack: invalid Huffman code');
      } else node = next;
    }
  }
  // Padding: at most 7 bits, all ones (the EOS prefix).
  if (depth > 7 || !allOnes) throw new HpackError('hpack: invalid Huffman padding');
  return Buffer.from(out).toString('latin1');
}

/** Reads an HPACK integer with an N-bit prefix at buf[pos]; returns [value, next pos]. */
function readInt(buf: Buffer, pos: number, end: number, prefixBits: number): [number, number] {
  const max = (1 << prefixBits) - 1;
  let value = (buf[pos] as number) & max;
  pos++;
  if (value < max) return [value, pos];
  let shift = 0;
  for (;;) {
    if (pos >= end) throw new HpackError('hpack: integer cut off');
    const b = buf[pos++] as number;
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (value > 2 ** 31) throw new HpackError('hpack: integer too large');
    if ((b & 0x80) === 0) return [value, pos];
  }
}

/** Header fields as decoded: name → value (a repeated name keeps the values joined by ', '). */
export type HeaderFields = Map<string, string>;

/** One connection's decoding state: the dynamic table. */
export class HpackDecoder {
  private readonly dynamic: Array<[string, string]> = []; // newest first
  private size = 0;
  private maxSize: number;

  /** settingsMaxSize: SETTINGS_HEADER_TABLE_SIZE we advertise (4096 by default). */
  constructor(private readonly settingsMaxSize = 4096) {
    this.maxSize = settingsMaxSize;
  }

  /**
   * Decodes a complete header block into `out`. listBytesMax bounds the decoded size (names +
   * values + 32 per field, as SETTINGS_MAX_HEADER_LIST_SIZE counts): above it, HpackError.
   * The block must be decoded even when the stream is refused: the table is shared.
   */
  decode(buf: Buffer, start: number, end: number, out: HeaderFields, listBytesMax: number): void {
    let pos = start;
    let listBytes = 0;
    while (pos < end) {
      const b = buf[pos] as number;
      let name: string;
      let value: string;
      if (b & 0x80) {
        // Indexed field.
        let index: number;
        [index, pos] = readInt(buf, pos, end, 7);
        [name, value] = this.entry(index);
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update.
        let size: number;
        [size, pos] = readInt(buf, pos, end, 5);
        if (size > this.settingsMaxSize) throw new HpackError('hpack: table size above SETTINGS');
        this.maxSize = size;
        this.evict(0);
        continue;
      } else {
        // Literal: with incremental indexing (01), without (0000) or never indexed (0001).
        const indexing = (b & 0xc0) === 0x40;
        let index: number;
        [index, pos] = readInt(buf, pos, end, indexing ? 6 : 4);
        if (index === 0) [name, pos] = this.readString(buf, pos, end);
        else name = this.entry(index)[0];
        [value, pos] = this.readString(buf, pos, end);
        if (indexing) this.add(name, value);
      }
      listBytes += name.length + value.length + 32;
      if (listBytes > listBytesMax) throw new HpackError('hpack: header list too large');
      const had = out.get(name);
      out.set(name, had === undefined ? value : `${had}, ${value}`);
    }
  }

  private readString(buf: Buffer, pos: number, end: number): [string, number] {
    if (pos >= end) throw new HpackError('hpack: string cut off');
    const huffman = ((buf[pos] as number) & 0x80) !== 0;
    let length: number;
    [length, pos] = readInt(buf, pos, end, 7);
    if (length > end - pos) throw new HpackError('hpack: string past the end of the block');
    const text = huffman
      ? huffmanDecode(buf, pos, pos + length)
      : buf.toString('latin1', pos, pos + length);
    return [text, pos + length];
  }

  private entry(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('hpack: index 0');
    if (index <= staticTable.length) return staticTable[index - 1] as [string, string];
    const e = this.dynamic[index - staticTable.length - 1];
    if (e === undefined) throw new HpackError(`hpack: index ${index} past the tables`);
    return e;
  }

  private add(name: string, value: string): void {
    const size = name.length + value.length + 32;
    this.evict(size);
    if (size <= this.maxSize) {
      this.dynamic.unshift([name, value]);
      this.size += size;
    }
  }

  /** Evicts the oldest entries until `room` more bytes fit (all of them when it cannot). */
  private evict(room: number): void {
    while (this.dynamic.length > 0 && this.size + room > this.maxSize) {
      const [n, v] = this.dynamic.pop() as [string, string];
      this.size -= n.length + v.length + 32;
    }
  }
}

// ---- encoding: literal fields without indexing ---------------------------------------------

function intBytes(value: number, prefixBits: number, firstByteFlags: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByteFlags | value];
  const out = [firstByteFlags | max];
  value -= max;
  while (value >= 128) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

function stringBytes(text: string): number[] {
  const bytes = Buffer.from(text, 'latin1');
  return [...intBytes(bytes.length, 7, 0), ...bytes];
}

/**
 * One header field as a literal without indexing (it leaves the peer's table alone, so any
 * block can be sent at any time). The name is taken from the static table when it is there.
 */
export function encodeLiteralField(name: string, value: string): Buffer {
  const index = staticTable.findIndex(([n]) => n === name) + 1;
  const head = index > 0 ? intBytes(index, 4, 0) : [0, ...stringBytes(name)];
  return Buffer.from([...head, ...stringBytes(value)]);
}

/** `:status: 200` from the static table (one byte). */
export const status200 = Buffer.from([0x80 | 8]);
