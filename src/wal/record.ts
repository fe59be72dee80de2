/**
 * WAL record codec. On-disk format (little endian), one record:
 *
 *   offset  size  field
 *   0       4     length of the whole record in bytes (header + body)
 *   4       1     type (1 = allocate, 2 = epoch start)
 *   5       3     zero
 *   8       8     epoch
 *   16      8     index (consecutive across the whole log, starting at 1)
 *   24      4     CRC32C of the body
 *   28      4     CRC32C of bytes 0..28 (the header)
 *   32      n     body: payload, then the trailer byte 0xA5
 *
 * Two CRCs let recovery trust the length before it reads the body, and the non-zero trailer
 * tells a record that was written whole but damaged later (corruption: refuse) from one whose
 * write was cut short (its last byte is still zero: a torn tail, cut off).
 *
 * Payloads: allocate = u8 namespace length, namespace (ASCII), u64 first, u32 count;
 *           epoch start = u8 node id length, node id (UTF-8), then, only when the epoch was
 *           begun by a forced promotion, u64 skip-ahead (every counter, and the floor that
 *           new namespaces start above, go up by it).
 */
import { crc32c } from '../core/crc32c';
import { assert } from '../core/assert';

export const recordHeaderBytes = 32;
export const recordTrailer = 0xa5;
export const RecordType = { allocate: 1, epochStart: 2 } as const;
export type RecordTypeCode = (typeof RecordType)[keyof typeof RecordType];
/** The largest record: header + 1 + 255-byte name + 8 + 4 + trailer. */
export const recordBytesMax = recordHeaderBytes + 1 + 255 + 8 + 4 + 1;

const two32 = 0x1_0000_0000;

export function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32LE(value % two32, at);
  buf.writeUInt32LE(Math.floor(value / two32), at + 4);
}

export function readU64(buf: Buffer, at: number): number {
  const value = buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * two32;
  return value;
}

export interface RecordHeader {
  type: number;
  epoch: number;
  index: number;
}

export interface AllocateRecord {
  type: typeof RecordType.allocate;
  epoch: number;
  index: number;
  namespace: string;
  first: number;
  count: number;
}

export interface EpochStartRecord {
  type: typeof RecordType.epochStart;
  epoch: number;
  index: number;
  nodeId: string;
  /** 0 unless a forced promotion raised every counter by this much. */
  skipAhead: number;
}

export type WalRecord = AllocateRecord | EpochStartRecord;

function finish(
  buf: Buffer,
  at: number,
  end: number,
  type: number,
  epoch: number,
  index: number,
): number {
  buf[end] = recordTrailer;
  const length = end + 1 - at;
  buf.writeUInt32LE(length, at);
  buf[at + 4] = type;
  buf[at + 5] = 0;
  buf[at + 6] = 0;
  buf[at + 7] = 0;
  writeU64(buf, epoch, at + 8);
  writeU64(buf, index, at + 16);
  buf.writeUInt32LE(crc32c(buf, at + recordHeaderBytes, end + 1), at + 24);
  buf.writeUInt32LE(crc32c(buf, at, at + 28), at + 28);
  return length;
}

/** Bytes of an allocate record for a namespace of `namespaceLength` ASCII characters. */
export function allocateRecordBytes(namespaceLength: number): number {
  return recordHeaderBytes + 1 + namespaceLength + 8 + 4 + 1;
}

/** Encodes an allocate record at buf[at]; returns its length. `namespace` is ASCII (validated). */
export function encodeAllocate(
  buf: Buffer,
  at: number,
  epoch: number,
  index: number,
  namespace: string,
  first: number,
  count: number,
): number {
  let p = at + recordHeaderBytes;
  const nameBytes = buf.write(namespace, p + 1, 'latin1');
  assert(nameBytes === namespace.length && nameBytes <= 255, 'namespace fits one length byte');
  buf[p] = nameBytes;
  p += 1 + nameBytes;
  writeU64(buf, first, p);
  buf.writeUInt32LE(count, p + 8);
  return finish(buf, at, p + 12, RecordType.allocate, epoch, index);
}

export function encodeEpochStart(
  buf: Buffer,
  at: number,
  epoch: number,
  index: number,
  nodeId: string,
  skipAhead = 0,
): number {
  const p = at + recordHeaderBytes;
  const idBytes = buf.write(nodeId, p + 1, 'utf8');
  assert(idBytes <= 255, 'node id fits one length byte');
  buf[p] = idBytes;
  let end = p + 1 + idBytes;
  if (skipAhead > 0) {
    writeU64(buf, skipAhead, end);
    end += 8;
  }
  return finish(buf, at, end, RecordType.epochStart, epoch, index);
}

/** Decodes the payload of a record whose CRCs were already verified. Returns null if malformed. */
export function decodeRecord(buf: Buffer, at: number, length: number): WalRecord | null {
  const type = buf[at + 4];
  const epoch = readU64(buf, at + 8);
  const index = readU64(buf, at + 16);
  const body = at + recordHeaderBytes;
  const bodyEnd = at + length - 1; // exclusive of trailer
  const strLen = buf[body] as number;
  const strEnd = body + 1 + strLen;
  if (type === RecordType.allocate) {
    if (strEnd + 12 !== bodyEnd) return null;
    const namespace = buf.toString('latin1', body + 1, strEnd);
    return {
      type,
      epoch,
      index,
      namespace,
      first: readU64(buf, strEnd),
      count: buf.readUInt32LE(strEnd + 8),
    };
  }
  if (type === RecordType.epochStart) {
    const skipped = strEnd + 8 === bodyEnd;
    if (strEnd !== bodyEnd && !skipped) return null;
    const skipAhead = skipped ? readU64(buf, strEnd) : 0;
    if (skipped && skipAhead === 0) return null;
    return { type, epoch, index, nodeId: buf.toString('utf8', body + 1, strEnd), skipAhead };
  }
  return null;
}
