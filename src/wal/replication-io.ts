/**
 * WAL operations that replication needs beyond append: reading raw records from an index
 * (catch-up), cutting the log after an index (log matching, rewind), and verifying a batch
 * received from a peer with the same checks recovery uses.
 *
 * Records travel between nodes in their on-disk encoding (record.ts): the sender reads the
 * bytes it wrote, the receiver verifies them record by record and appends them unchanged.
 */
import { CorruptionError } from '../core/errors';
import { scanSegment } from './decoder';

export interface VerifiedBatch {
  records: number;
  firstIndex: number;
  lastIndex: number;
  lastEpoch: number;
}

/**
 * Checks that buf[0, length) holds whole, CRC-valid records numbered firstIndex, firstIndex+1,
 * … with epochs never below `minEpoch` and never decreasing, and nothing else. Throws
 * CorruptionError naming the offset of the first bad byte.
 */
export function verifyBatch(
  buf: Buffer,
  length: number,
  firstIndex: number,
  minEpoch: number,
): VerifiedBatch {
  if (length === 0) throw new CorruptionError('replication: empty batch');
  const scan = scanSegment(buf, length, firstIndex, minEpoch, () => undefined);
  if (scan.end.kind !== 'clean' || scan.end.offset !== length) {
    const why = scan.end.kind === 'corrupt' ? scan.end.message : 'incomplete record';
    throw new CorruptionError(`replication: ${why} in batch at offset ${scan.end.offset}`);
  }
  return {
    records: scan.records,
    firstIndex,
    lastIndex: scan.lastIndex,
    lastEpoch: scan.lastEpoch,
  };
}
