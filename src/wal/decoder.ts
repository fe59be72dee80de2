/**
 * Scans one segment's bytes and classifies how its data ends:
 *   - clean:   after the last record the rest of the segment is zero (preallocated space);
 *   - torn:    the last write was cut short (only its prefix reached the disk, the rest is still
 *              zero). Allowed only at the tail of the last segment, where it is cut off;
 *   - corrupt: anything else — a damaged record followed by data, a complete record with a bad
 *              CRC, an index out of sequence. Recovery refuses to start.
 */
import { crc32c } from '../core/crc32c';
import { decodeRecord, readU64, recordHeaderBytes, recordTrailer, type WalRecord } from './record';

export type ScanEnd =
  | { kind: 'clean'; offset: number }
  | { kind: 'torn'; offset: number; dataEnd: number }
  | { kind: 'corrupt'; offset: number; message: string };

export interface ScanResult {
  end: ScanEnd;
  records: number;
  lastIndex: number;
  /** Last epoch seen (startEpoch if the segment has no records). */
  lastEpoch: number;
}

const zeroChunk = Buffer.alloc(64 * 1024);

/** Offset just past the last non-zero byte in buf[from, to), or `from` if all zero. */
export function nonZeroEnd(buf: Buffer, from: number, to: number): number {
  let end = to;
  while (end > from) {
    const start = Math.max(from, end - zeroChunk.length);
    if (buf.compare(zeroChunk, 0, end - start, start, end) !== 0) {
      let i = end - 1;
      while (buf[i] === 0) i--;
      return i + 1;
    }
    end = start;
  }
  return from;
}

function isZero(buf: Buffer, from: number, to: number): boolean {
  return nonZeroEnd(buf, from, to) === from;
}

/**
 * Scans buf[0, length). `expectedIndex` is the index the first record must have.
 * `startEpoch` is the last epoch before this segment (epochs never go back). `onRecord` sees
 * each verified record in order.
 */
export function scanSegment(
  buf: Buffer,
  length: number,
  expectedIndex: number,
  startEpoch: number,
  onRecord: (record: WalRecord, offset: number) => void,
): ScanResult {
  let at = 0;
  let records = 0;
  let lastIndex = expectedIndex - 1;
  let lastEpoch = startEpoch;
  const result = (end: ScanEnd): ScanResult => ({ end, records, lastIndex, lastEpoch });
  for (;;) {
    // A record's length word is never zero, so most records skip the zero-header compare.
    const headerMayBeZero = length - at < recordHeaderBytes || buf.readUInt32LE(at) === 0;
    if (
      headerMayBeZero &&
      (length - at < recordHeaderBytes || isZero(buf, at, at + recordHeaderBytes))
    ) {
      if (isZero(buf, at, length)) return result({ kind: 'clean', offset: at });
      return result({
        kind: 'corrupt',
        offset: at,
        message: 'zeroed record header followed by data',
      });
    }
    if (crc32c(buf, at, at + 28) !== buf.readUInt32LE(at + 28)) {
      // A header cut short leaves everything after the header zero; a damaged header of a
      // record that was written whole still has its body (and non-zero trailer) after it.
      if (isZero(buf, at + recordHeaderBytes, length)) {
        return result({ kind: 'torn', offset: at, dataEnd: nonZeroEnd(buf, at, length) });
      }
      return result({ kind: 'corrupt', offset: at, message: 'record header crc mismatch' });
    }
    const recordLength = buf.readUInt32LE(at);
    if (recordLength < recordHeaderBytes + 2 || at + recordLength > length) {
      return result({
        kind: 'corrupt',
        offset: at,
        message: `impossible record length ${recordLength}`,
      });
    }
    const end = at + recordLength;
    if (crc32c(buf, at + recordHeaderBytes, end) !== buf.readUInt32LE(at + 24)) {
      if (buf[end - 1] === 0 && isZero(buf, end, length)) {
        return result({ kind: 'torn', offset: at, dataEnd: nonZeroEnd(buf, at, end) });
      }
      return result({ kind: 'corrupt', offset: at, message: 'record body crc mismatch' });
    }
    if (buf[end - 1] !== recordTrailer) {
      return result({ kind: 'corrupt', offset: at, message: 'record trailer missing' });
    }
    const index = readU64(buf, at + 16);
    if (index !== lastIndex + 1) {
      return result({
        kind: 'corrupt',
        offset: at,
        message: `record index ${index}, expected ${lastIndex + 1}`,
      });
    }
    const record = decodeRecord(buf, at, recordLength);
    if (record === null)
      return result({ kind: 'corrupt', offset: at, message: 'malformed record payload' });
    if (record.epoch < lastEpoch) {
      return result({
        kind: 'corrupt',
        offset: at,
        message: `epoch ${record.epoch} after epoch ${lastEpoch}`,
      });
    }
    onRecord(record, at);
    records++;
    lastIndex = index;
    lastEpoch = record.epoch;
    at = end;
  }
}
