import { describe, expect, it } from 'vitest';
import { crc32c } from '../core/crc32c';
import {
  decodeRecord,
  encodeAllocate,
  encodeEpochStart,
  recordBytesMax,
  recordTrailer,
} from './record';
import { scanSegment } from './decoder';

describe('crc32c', () => {
  it('matches the published CRC32C check values', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
  });

  it('continues across chunks and honours start/end', () => {
    const data = Buffer.from('the quick brown fox jumps over the lazy dog');
    expect(crc32c(data, 10, data.length, crc32c(data, 0, 10))).toBe(crc32c(data));
    expect(crc32c(data, 4, 19)).toBe(crc32c(data.subarray(4, 19)));
  });
});

describe('record codec', () => {
  it('round-trips allocate records, including the largest IDs and namespaces', () => {
    const buf = Buffer.alloc(4096);
    const cases = [
      { namespace: 'a', first: 1, count: 1, epoch: 1, index: 1 },
      {
        namespace: 'x'.repeat(64),
        first: Number.MAX_SAFE_INTEGER - 9,
        count: 10,
        epoch: 2 ** 40,
        index: 2 ** 52,
      },
      {
        namespace: 'urls.v2-prod_eu',
        first: 4_294_967_296,
        count: 10_000,
        epoch: 7,
        index: 4_294_967_297,
      },
    ];
    for (const c of cases) {
      const length = encodeAllocate(buf, 0, c.epoch, c.index, c.namespace, c.first, c.count);
      expect(length).toBeLessThanOrEqual(recordBytesMax);
      expect(buf[length - 1]).toBe(recordTrailer);
      expect(decodeRecord(buf, 0, length)).toEqual({ type: 1, ...c });
    }
  });

  it('round-trips epoch-start records', () => {
    const buf = Buffer.alloc(512);
    const length = encodeEpochStart(buf, 0, 5, 99, 'node-é1');
    expect(decodeRecord(buf, 0, length)).toEqual({
      type: 2,
      epoch: 5,
      index: 99,
      nodeId: 'node-é1',
      skipAhead: 0,
    });
    // A forced promotion's epoch start carries its skip-ahead (a u64 after the node id).
    const forced = encodeEpochStart(buf, 0, 6, 100, 'b', 2 ** 40 + 7);
    expect(forced).toBe(length - 'node-é1'.length - 1 + 'b'.length + 8);
    expect(decodeRecord(buf, 0, forced)).toEqual({
      type: 2,
      epoch: 6,
      index: 100,
      nodeId: 'b',
      skipAhead: 2 ** 40 + 7,
    });
  });

  it('a sequence of encoded records scans back in order and ends clean', () => {
    const buf = Buffer.alloc(8192);
    let at = 0;
    for (let i = 1; i <= 50; i++) at += encodeAllocate(buf, at, 1, i, `ns${i % 3}`, i * 10, i);
    const seen: number[] = [];
    const result = scanSegment(buf, buf.length, 1, 0, (r) => seen.push(r.index));
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(result.end).toEqual({ kind: 'clean', offset: at });
  });

  it('rejects an epoch lower than the one before it, across segment boundaries too', () => {
    const buf = Buffer.alloc(1024);
    encodeAllocate(buf, 0, 3, 1, 'a', 1, 1);
    expect(scanSegment(buf, buf.length, 1, 4, () => undefined).end).toMatchObject({
      kind: 'corrupt',
      message: 'epoch 3 after epoch 4',
    });
    expect(scanSegment(buf, buf.length, 1, 3, () => undefined).end.kind).toBe('clean');
  });

  it('rejects a record whose index breaks the sequence', () => {
    const buf = Buffer.alloc(1024);
    const at = encodeAllocate(buf, 0, 1, 1, 'a', 1, 1);
    encodeAllocate(buf, at, 1, 3, 'a', 2, 1);
    const result = scanSegment(buf, buf.length, 1, 0, () => undefined);
    expect(result.end).toMatchObject({ kind: 'corrupt', message: 'record index 3, expected 2' });
  });

  it('tells a torn tail (prefix written, rest zero) from a damaged complete record', () => {
    const full = Buffer.alloc(1024);
    const first = encodeAllocate(full, 0, 1, 1, 'ns', 1, 1);
    const end = first + encodeAllocate(full, first, 1, 2, 'ns', 2, 1);
    for (let cut = first + 1; cut < end; cut++) {
      const torn = Buffer.alloc(1024);
      full.copy(torn, 0, 0, cut);
      expect(scanSegment(torn, torn.length, 1, 0, () => undefined).end).toMatchObject({
        kind: 'torn',
        offset: first,
      });
    }
    for (let at = first; at < end; at++) {
      const damaged = Buffer.from(full);
      damaged[at] = (damaged[at] as number) ^ 0x10;
      expect(scanSegment(damaged, damaged.length, 1, 0, () => undefined).end.kind).toBe('corrupt');
    }
  });
});
