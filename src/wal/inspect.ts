/**
 * Offline, read-only inspection of a data dir (`tally wal verify` / `tally wal dump`): checks
 * every segment exactly as recovery would, without cutting a torn tail or writing anything.
 */
import * as path from 'node:path';
import { CorruptionError } from '../core/errors';
import { scanSegment } from './decoder';
import { RecordType } from './record';
import { listSegments, walDirName } from './segment-files';
import { readSnapshot } from './snapshot';
import { NodeStorage, type Storage } from './storage';

export interface InspectedRecord {
  file: string;
  offset: number;
  type: string;
  epoch: number;
  index: number;
  namespace?: string;
  first?: number;
  count?: number;
  nodeId?: string;
  skipAhead?: number;
}

export interface InspectReport {
  segments: number;
  records: number;
  firstIndex: number;
  lastIndex: number;
  tornTail: { file: string; offset: number } | null;
  corruption: { file: string; offset: number; message: string } | null;
  snapshotIndex: number;
}

export async function inspectDataDir(
  dataDir: string,
  onRecord?: (r: InspectedRecord) => void,
  storage: Storage = new NodeStorage(),
): Promise<InspectReport> {
  const report: InspectReport = {
    segments: 0,
    records: 0,
    firstIndex: 0,
    lastIndex: 0,
    tornTail: null,
    corruption: null,
    snapshotIndex: 0,
  };
  try {
    report.snapshotIndex = (await readSnapshot(storage, dataDir))?.index ?? 0;
  } catch (err) {
    if (!(err instanceof CorruptionError)) throw err;
    report.corruption = { file: 'snapshot', offset: 0, message: err.message };
    return report;
  }
  const walDir = path.join(dataDir, walDirName);
  const segments = (await listSegments(storage, walDir)).map((e) => ({
    name: e.name,
    first: e.firstIndex,
  }));
  report.segments = segments.length;
  let expected = segments[0]?.first ?? 1;
  report.firstIndex = expected;
  let lastEpoch = 0;
  // The same coverage rules as recovery (src/wal/wal.ts): the log must reach back to the
  // snapshot and forward past it.
  if (segments.length > 0 && expected > report.snapshotIndex + 1) {
    const file = path.join(walDir, (segments[0] as { name: string }).name);
    const message = `records ${report.snapshotIndex + 1}..${expected - 1} are missing`;
    report.corruption = { file, offset: 0, message };
    return report;
  }
  for (let i = 0; i < segments.length; i++) {
    const { name, first } = segments[i] as { name: string; first: number };
    const filePath = path.join(walDir, name);
    if (first !== expected) {
      report.corruption = {
        file: filePath,
        offset: 0,
        message: `segment starts at index ${first}, expected ${expected}`,
      };
      break;
    }
    const buf = await storage.readFile(filePath);
    const scan = scanSegment(buf, buf.length, first, lastEpoch, (record, offset) => {
      report.records++;
      if (!onRecord) return;
      const base = { file: filePath, offset, epoch: record.epoch, index: record.index };
      if (record.type === RecordType.allocate) {
        onRecord({
          ...base,
          type: 'allocate',
          namespace: record.namespace,
          first: record.first,
          count: record.count,
        });
      } else {
        onRecord({
          ...base,
          type: 'epoch-start',
          nodeId: record.nodeId,
          ...(record.skipAhead > 0 ? { skipAhead: record.skipAhead } : {}),
        });
      }
    });
    expected = scan.lastIndex + 1;
    lastEpoch = scan.lastEpoch;
    const isLast = i === segments.length - 1;
    if (scan.end.kind === 'corrupt' || (scan.end.kind === 'torn' && !isLast)) {
      const message =
        scan.end.kind === 'corrupt' ? scan.end.message : 'torn record before the last segment';
      report.corruption = { file: filePath, offset: scan.end.offset, message };
      break;
    }
    if (scan.end.kind === 'torn') report.tornTail = { file: filePath, offset: scan.end.offset };
  }
  report.lastIndex = expected - 1;
  if (report.corruption === null && report.lastIndex < report.snapshotIndex) {
    const message = `log ends at index ${report.lastIndex}, before the snapshot index ${report.snapshotIndex}`;
    report.corruption = { file: walDir, offset: 0, message };
  }
  return report;
}
